"""A user's sessions, most recently active first, in keyset pages.

The embedded server reads every index entry a filter matches, even under a limit. So:
- a user with few sessions (by the count kept on the user document) is read with one query
  from the cursor's position onwards: the whole remainder is small;
- otherwise the sessions are read in windows of `updated_at` that start narrow and widen
  backwards until the page is full (chat.paging), so a page costs a few range reads whatever
  the size of the history.
The cursor holds the last item's (updated_at, _id) and the window width that filled the page.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from app.chat import repository
from app.chat.paging import INITIAL_WINDOW, ActivityPosition, activity_windows
from app.chat.schemas import Page, SessionOut
from app.core.cursors import CursorCodec
from app.core.db import Database, Document
from app.core.errors import BadRequest
from app.core.types import parse_object_id, utc_now

CURSOR_KIND = "sessions"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
READ_WHOLE_REMAINDER_UP_TO = 256


async def list_sessions(
    database: Database, codec: CursorCodec, user_id: ObjectId, platform: str | None, limit: int, cursor: str | None
) -> Page[SessionOut]:
    """The user's sessions (of one platform, when given); a platform's sessions are read from
    an index that starts with it, so a filtered page costs what an unfiltered one does."""
    position = _decode_cursor(codec, _cursor_kind(platform), cursor) if cursor is not None else None
    count = await repository.session_count(database.db, user_id)
    if count is not None and count <= READ_WHOLE_REMAINDER_UP_TO:
        found, width = await _read_remainder(database, user_id, platform, position), INITIAL_WINDOW
    else:
        found, width = await _read_by_windows(database, user_id, platform, position, limit)
    items = found[:limit]
    next_cursor = None
    if len(found) > limit:
        last = items[-1]
        next_cursor = codec.encode(
            _cursor_kind(platform),
            {"t": _millis(last["updated_at"]), "id": str(last["_id"]), "w": _millis_of(width)},
        )
    return Page(items=[SessionOut.model_validate(d) for d in items], next_cursor=next_cursor)


async def find_by_name(database: Database, user_id: ObjectId, name: str) -> Page[SessionOut]:
    """The one session of that name, as a page, or an empty page."""
    document = await repository.find_named_session(database.db, user_id, name)
    return Page(items=[SessionOut.model_validate(document)] if document else [], next_cursor=None)


def _cursor_kind(platform: str | None) -> str:
    return CURSOR_KIND if platform is None else f"{CURSOR_KIND}:{platform}"


async def _read_remainder(
    database: Database, user_id: ObjectId, platform: str | None, position: ActivityPosition | None
) -> list[Document]:
    """Every session after `position`, in one query (the caller knows there are few)."""
    until = position.updated_at if position else None
    found = await repository.sessions_active_in(database.db, user_id, platform, None, until, None, until_inclusive=True)
    if position is None:
        return found
    return [d for d in found if d["updated_at"] < position.updated_at or d["_id"] < position.session_id]


async def _read_by_windows(
    database: Database, user_id: ObjectId, platform: str | None, position: ActivityPosition | None, limit: int
) -> tuple[list[Document], timedelta]:
    """At least limit + 1 sessions after `position` (fewer at the end), window by window."""
    found: list[Document] = []
    if position is not None:  # sessions tied with the last one's time, after it in _id order
        found = await repository.sessions_tied_before(
            database.db, user_id, platform, position.updated_at, position.session_id, limit + 1
        )
    width = position.window if position else INITIAL_WINDOW
    for window in activity_windows(position.updated_at if position else None, utc_now(), width):
        if len(found) > limit:
            break
        found += await repository.sessions_active_in(
            database.db, user_id, platform, window.since, window.until, limit + 1 - len(found)
        )
        width = window.width
    return found, width


def _millis(value: datetime) -> int:
    return (value - EPOCH) // timedelta(milliseconds=1)


def _millis_of(width: timedelta) -> int:
    return width // timedelta(milliseconds=1)


def _decode_cursor(codec: CursorCodec, kind: str, cursor: str) -> ActivityPosition:
    values = codec.decode(kind, cursor)
    try:
        return ActivityPosition(
            updated_at=EPOCH + timedelta(milliseconds=values["t"]),
            session_id=parse_object_id(values["id"]),
            window=timedelta(milliseconds=values["w"]),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise BadRequest("Invalid cursor") from exc
