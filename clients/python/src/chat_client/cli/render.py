"""How the `chat` command prints: Markdown-friendly text for people, JSON lines for scripts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TextIO

from chat_client._models import Message, SearchHit, Session


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def session_line(session: Session) -> str:
    label = session.title if session.name in (None, session.title) else f"{session.title} [{session.name}]"
    return f"{session.id}  {session.platform:<8} {session.message_count:>6} msgs  {when(session.updated_at)}  {label}"


def session_heading(session: Session) -> str:
    name = f" · name `{session.name}`" if session.name else ""
    return f"# {session.title}\n\n_{session.platform}{name} · {session.message_count} messages · {session.id}_\n"


def message_block(message: Message) -> str:
    extra = ""
    if message.metadata:
        extra = "\n\n```json\n" + json.dumps(message.metadata, ensure_ascii=False, indent=2) + "\n```"
    return f"**{message.role}** · #{message.seq} · {when(message.created_at)}\n\n{message.content}{extra}\n"


def json_line(out: TextIO, value: Any) -> None:
    out.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")
    out.flush()


# Fields the server leaves out when unset (a session's agent, the status of a message the
# server did not generate): left out here too, so the output reads like the server's answer.
ABSENT_WHEN_NONE = ("agent", "status")


def _as_served(dumped: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in dumped.items() if not (key in ABSENT_WHEN_NONE and value is None)}


def session_json(session: Session) -> dict[str, Any]:
    return _as_served(session.model_dump(mode="json", by_alias=True))


def message_json(message: Message) -> dict[str, Any]:
    return _as_served(message.model_dump(mode="json", by_alias=True))


def search_hit(hit: SearchHit) -> str:
    where = f"#{hit.message.seq} {hit.message.role} · {when(hit.message.created_at)}" if hit.message else "title"
    snippet = hit.snippet
    text = ("…" if snippet.truncated_start else "") + snippet.text + ("…" if snippet.truncated_end else "")
    return f"{hit.session.title} ({hit.session.id}) · {where}\n  {' '.join(text.split())}"
