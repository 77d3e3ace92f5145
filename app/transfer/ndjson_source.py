"""Our own export (app.transfer.export) read back: a header line, then each session's line
followed by its messages' lines.

A session is keyed by the id it had where it was exported from, each message likewise, so
exporting from one account and importing into another any number of times creates everything
exactly once; into the account it was exported from, a session that is still there is left as
it is (see importer). Metadata is read back exactly as it was exported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from app.transfer.bounded_json import MAX_NESTING, nesting_depth
from app.transfer.conversations import Conversation, ImportedMessage, ImportFormatError, Unreadable, short, typed
from app.transfer.export import FORMAT, VERSION

SOURCE_PREFIX = "chat-export:"
MAX_LINE_BYTES = 1024 * 1024


def read_ndjson(stream: IO[bytes]) -> Iterator[Conversation | Unreadable]:
    lines = _lines(stream)
    header = next(lines, None)
    if not isinstance(header, dict) or header.get("type") != "export" or header.get("format") != FORMAT:
        raise ImportFormatError("the first line is not a chat-export header")
    if header.get("version") != VERSION:
        raise ImportFormatError(f"only version {VERSION} of chat-export is read")
    current: Conversation | Unreadable | None = None
    for number, line in enumerate(lines, start=2):
        kind = line.get("type") if isinstance(line, dict) else None
        if kind == "session":
            if current is not None:
                yield current
            current = _session(line.get("session"), number)
        elif kind == "message" and isinstance(current, Conversation):
            problem = _add_message(current, line.get("message"))
            if problem:
                current = Unreadable(current.title, f"line {number}: {problem}")
        elif isinstance(current, Unreadable):
            continue  # the rest of a conversation already given up
        else:
            label = current.title if current else f"line {number}"
            current = Unreadable(short(label), f"line {number}: not a session or message line")
    if current is not None:
        yield current


def _lines(stream: IO[bytes]) -> Iterator[Any]:
    """Each line parsed; a line over MAX_LINE_BYTES is never held whole (it is skipped)."""
    number = 0
    while raw := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            while raw and not raw.endswith(b"\n"):
                raw = stream.readline(MAX_LINE_BYTES)
            yield {"type": "invalid", "line": number}
            continue
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except RecursionError:  # nested thousands of levels deep
            raise ImportFormatError(f"line {number} nests deeper than {MAX_NESTING} levels") from None
        except (ValueError, UnicodeDecodeError):
            if number == 1:
                raise ImportFormatError("the first line is not JSON") from None
            yield {"type": "invalid", "line": number}
            continue
        if nesting_depth(value) > MAX_NESTING:
            raise ImportFormatError(f"line {number} nests deeper than {MAX_NESTING} levels")
        yield value


def _session(value: Any, number: int) -> Conversation | Unreadable:
    if not isinstance(value, dict) or not isinstance(value.get("_id"), str):
        return Unreadable(f"line {number}", "a session line without a session id")
    metadata: dict[str, Any] = typed(value, "metadata", dict, {})
    title = typed(value, "title", str, "Untitled")
    platform = typed(value, "platform", str, "api")
    name = value.get("name") if isinstance(value.get("name"), str) else None
    conversation = Conversation(SOURCE_PREFIX + value["_id"][:100], title, platform, metadata, name)
    conversation.created_at = _parse_time(value.get("created_at"))
    conversation.updated_at = _parse_time(value.get("updated_at"))
    owner = value.get("user_id")
    if isinstance(owner, str):
        conversation.exported_as = (owner, value["_id"])
    return conversation


def _add_message(conversation: Conversation, value: Any) -> str | None:
    if not isinstance(value, dict) or not isinstance(value.get("_id"), str):
        return "a message line without a message id"
    metadata: dict[str, Any] = typed(value, "metadata", dict, {})
    created = _parse_time(value.get("created_at"))
    role, content = value.get("role"), value.get("content")
    if not isinstance(role, str) or not isinstance(content, str):
        return "a message without a role or content"
    conversation.messages.append(ImportedMessage(value["_id"][:100], role, content, metadata, created))
    return None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
