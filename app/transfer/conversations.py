"""What every import format is read into: conversations of messages, each keyed by the id it
had at its source (which makes a second import of the same file a no-op). Source ids and
dates are fields of their own: metadata is only ever what the source's user wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar


@dataclass
class ImportedMessage:
    source_id: str
    role: str
    content: str
    metadata: dict[str, Any]
    created_at: datetime | None


@dataclass
class Conversation:
    source_id: str
    title: str
    platform: str
    metadata: dict[str, Any]
    name: str | None = None  # a session's own key (our export carries it)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # Our own export: (owner id, session id) where it was exported, to restore into that account.
    exported_as: tuple[str, str] | None = None
    messages: list[ImportedMessage] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (message source id, reason)


@dataclass(frozen=True)
class Unreadable:
    """A conversation that could not be read at all; the others still are."""

    label: str
    reason: str


class ImportFormatError(ValueError):
    """The file as a whole is not an import this server reads (a 422)."""


def from_epoch(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        moment = datetime.fromtimestamp(float(value), UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def short(text: str, limit: int = 80) -> str:
    """A label for reports: never a whole (possibly huge) input value."""
    return text if len(text) <= limit else text[:limit] + "…"


T = TypeVar("T")


def typed(source: dict[str, Any], key: str, kind: type[T], default: T) -> T:
    """source[key] when it is a `kind`, else `default`: input files are not trusted."""
    value = source.get(key)
    return value if isinstance(value, kind) else default
