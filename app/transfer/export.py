"""Exports: all of a user's history as NDJSON (the format `POST /chat/import` takes back), and
one conversation as JSON or Markdown. Streamed: memory stays constant whatever the history."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import datetime

from bson import ObjectId

from app.chat import history
from app.chat.schemas import MessageOut, SessionOut
from app.core.db import Database
from app.core.types import format_utc, utc_now

FORMAT = "chat-export"
VERSION = 1
MEDIA_TYPE = "application/x-ndjson"


def export_filename(now: datetime) -> str:
    return f"chat-export-{now.strftime('%Y-%m-%d')}.ndjson"


async def export_lines(database: Database, user_id: ObjectId, now: datetime) -> AsyncIterator[bytes]:
    """The header, then per session (most recent activity first) its line and its messages in
    seq order; one JSON object a line."""
    sessions, messages = await history.totals(database, user_id)
    header = {"type": "export", "format": FORMAT, "version": VERSION, "exported_at": format_utc(now)}
    yield _line(header | {"sessions": sessions, "messages": messages})
    async for session in history.sessions_by_activity(database, user_id):
        yield b'{"type":"session","session":' + session.model_dump_json().encode() + b"}\n"
        async for message in history.session_messages(database, session):
            yield b'{"type":"message","message":' + message.model_dump_json().encode() + b"}\n"


def _line(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


async def session_json(database: Database, session: SessionOut) -> AsyncIterator[bytes]:
    """`{"session": {...}, "messages": [...]}`, written as it is read."""
    yield b'{"session":' + session.model_dump_json().encode() + b',"messages":['
    separator = b""
    async for message in history.session_messages(database, session):
        yield separator + message.model_dump_json().encode()
        separator = b","
    yield b"]}\n"


ROLE_HEADINGS = {"user": "You", "assistant": "Assistant", "system": "System", "tool": "Tool"}


async def session_markdown(database: Database, session: SessionOut) -> AsyncIterator[bytes]:
    """A transcript for people: the title, when it was held, then each turn under a heading."""
    created = format_utc(session.created_at)
    title = _escape_html(_one_line(session.title))
    yield f"# {title}\n\n*{session.message_count} messages, started {created}*\n".encode()
    async for message in history.session_messages(database, session):
        yield _markdown_turn(message).encode()


def _markdown_turn(message: MessageOut) -> str:
    heading = f"\n---\n\n### {ROLE_HEADINGS[message.role]} · {format_utc(message.created_at)}\n\n"
    body = escape_structure(message.content) if message.content.strip() else "*(no text)*"
    return heading + body.rstrip() + "\n"


# A line that Markdown reads as a heading (ATX `#`, or the `===` / `---` under a setext one) or
# as a thematic break: the export's own structure is made of these.
_STRUCTURE_LINE = re.compile(r"^( {0,3})(#|=+[ \t]*$|([-*_])(?:[ \t]*\3){2,}[ \t]*$|-+[ \t]*$)", re.MULTILINE)


def escape_structure(text: str) -> str:
    """A turn's text with its headings, rules and HTML escaped, so that it cannot look like the
    export's own turns (`---` then `### You · <time>`); the rest of its Markdown is kept."""
    return _STRUCTURE_LINE.sub(lambda match: match.group(1) + "\\" + match.group(2), _escape_html(text))


def _escape_html(text: str) -> str:
    return text.replace("<", "&lt;")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def now() -> datetime:
    return utc_now()
