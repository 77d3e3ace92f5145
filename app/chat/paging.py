"""Keyset pages over the embedded server's cheap access path: bounded index ranges.

The embedded server reads every index entry a filter matches, even under a limit, so an
open-ended "newest first, limit 50" costs as much as the whole list. Both lists here read only
ranges that hold about one page:

- messages: `seq` is dense per session (1..message_count), so a page is one seq range;
- sessions: ranges of `updated_at` that start narrow and widen geometrically backwards until
  the page is full, so a page costs a few cheap range reads whatever the user's history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bson import ObjectId

INITIAL_WINDOW = timedelta(minutes=1)
WINDOW_GROWTH = 4
MAX_SEQ = 2**63 - 1  # a seq is a BSON int64
MAX_WINDOWS = 12  # 1 min x 4^11: the last bounded window reaches ~10 years back


@dataclass(frozen=True)
class SeqRange:
    first: int
    last: int

    @property
    def has_older(self) -> bool:
        return self.first > 1


def message_page_range(newest_seq: int, limit: int) -> SeqRange | None:
    """The seq range of the page ending at `newest_seq`, or None when there is nothing."""
    if newest_seq < 1:
        return None
    return SeqRange(max(1, newest_seq - limit + 1), newest_seq)


@dataclass(frozen=True)
class ActivityPosition:
    """Where a sessions page ended: the last item's (updated_at, _id), and the window width
    that filled it, to start the next page's search at a fitting width."""

    updated_at: datetime
    session_id: ObjectId
    window: timedelta


@dataclass(frozen=True)
class ActivityWindow:
    """Sessions last active in [since, until); None leaves that side open."""

    since: datetime | None
    until: datetime | None
    width: timedelta


def activity_windows(until: datetime | None, now: datetime, start_width: timedelta) -> list[ActivityWindow]:
    """Windows walking back from `until` (or from the open future, on a first page: another
    server's clock may run ahead), each WINDOW_GROWTH times wider than the last; the final one
    is open towards the past."""
    windows: list[ActivityWindow] = []
    width = max(start_width, timedelta(milliseconds=1))
    upper = until
    for _ in range(MAX_WINDOWS):
        try:
            lower = (upper or now) - width
        except OverflowError:
            break
        windows.append(ActivityWindow(lower, upper, width))
        upper, width = lower, width * WINDOW_GROWTH
    windows.append(ActivityWindow(None, upper, width))
    return windows
