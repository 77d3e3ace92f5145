"""What is sent upstream: the agent's instructions, then the conversation newest-last within
MODEL_CONTEXT_CHARS.

The oldest messages are dropped first; a tool result is never sent without the assistant
message that called it; replies that failed, were cancelled or are still being written are
left out; metadata's OpenAI-style `tool_calls` / `tool_call_id` are sent as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bson import ObjectId

from app.chat import service as chat
from app.core.db import Database, Document

PAGE = 200
# However short the messages, at most this many are read and sent: the time to build a history
# stays bounded in a long session of tiny messages.
MAX_MESSAGES = 2000
Message = dict[str, Any]


async def conversation(
    database: Database,
    session_id: ObjectId,
    until_seq: int,
    instructions: str,
    budget: int,
    newest: Sequence[Document] = (),
) -> list[Message]:
    """The messages up to `until_seq` (exclusive), then `newest` (messages not stored yet, as
    documents), to send."""
    remaining = budget - len(instructions)
    picked: list[Message] = []

    def pick(message: Document) -> bool:
        """Take the message if it fits; False once the budget is spent."""
        nonlocal remaining
        converted = _upstream_message(message)
        if converted is None:
            return True
        size = _size(converted)
        if size > remaining:
            if not picked:  # the newest message alone is too long: its end is what matters
                converted["content"] = str(converted.get("content") or "")[-remaining:]
                picked.append(converted)
            remaining = 0
            return False
        picked.append(converted)
        remaining -= size
        return True

    fits = all(pick(message) for message in reversed(newest))
    newest_seq = until_seq - 1
    while fits and newest_seq >= 1 and remaining > 0 and until_seq - newest_seq + len(newest) <= MAX_MESSAGES:
        oldest = max(1, newest_seq - PAGE + 1)
        page = await chat.stored_messages_between(database, session_id, oldest - 1, newest_seq)
        fits = all(pick(message) for message in reversed(page))
        newest_seq = oldest - 1
    picked.reverse()
    history = _without_orphan_tool_results(picked)
    return ([{"role": "system", "content": instructions}] if instructions else []) + history


def _upstream_message(message: Document) -> Message | None:
    """A stored message as sent upstream (read as stored: a page of them is on the way to
    the first token)."""
    if message.get("status") not in (None, "complete"):  # failed, cancelled, being written
        return None
    role, metadata = message["role"], message.get("metadata") or {}
    converted: Message = {"role": role, "content": message["content"]}
    if role == "assistant":
        tool_calls = metadata.get("tool_calls")
        if isinstance(tool_calls, list) and tool_calls:
            converted["tool_calls"] = tool_calls
            converted["content"] = message["content"] or None
    elif role == "tool":
        tool_call_id = metadata.get("tool_call_id")
        if not isinstance(tool_call_id, str):
            return None  # the upstream refuses a tool result that names no call
        converted["tool_call_id"] = tool_call_id
    return converted


def _size(message: Message) -> int:
    size = len(str(message.get("content") or ""))
    if "tool_calls" in message:
        size += len(str(message["tool_calls"]))
    return size


def _without_orphan_tool_results(messages: list[Message]) -> list[Message]:
    """Oldest first: drop tool results whose calling assistant message is not sent."""
    called: set[str] = set()
    kept: list[Message] = []
    for message in messages:
        if message["role"] == "assistant":
            called = {str(call.get("id")) for call in message.get("tool_calls", []) if isinstance(call, dict)}
        elif message["role"] == "tool":
            if message["tool_call_id"] not in called:
                continue
        else:
            called = set()
        kept.append(message)
    return kept
