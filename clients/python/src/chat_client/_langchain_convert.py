"""LangChain messages <-> the server's role, content and metadata, exactly both ways.

`role` and text `content` map directly (human -> user, ai -> assistant, system, tool); a
message chunk (what `stream()` adds up to) is stored as the message it is, its
tool_call_chunks merged into tool_calls. The
rest goes in `metadata`, under the names the README's OpenAI mapping uses where there is one
(`tool_calls` in OpenAI's shape, `tool_call_id`, `name`), so other clients read it too; and
LangChain's own fields under theirs (`id`, `additional_kwargs`, `response_metadata`,
`usage_metadata`, `invalid_tool_calls`, `status`, `artifact`). Content that the server would
not take as text (a list of content blocks, or blank text) is kept whole in `metadata.content`
and shown as its text. Metadata keys this module does not know (a message written by another
client: `model`, `usage`, ...) come back in `additional_kwargs`.
"""

from __future__ import annotations

import json
from typing import Any, cast

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    BaseMessageChunk,
    HumanMessage,
    InvalidToolCall,
    SystemMessage,
    ToolCall,
    ToolMessage,
    message_chunk_to_message,
)

from chat_client._models import Message, MessageIn, Role

ROLES: dict[str, Role] = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
BLANK_PLACEHOLDER = "(empty)"
COMMON = ("id", "name", "additional_kwargs", "response_metadata")


def to_store(message: BaseMessage) -> MessageIn:
    if isinstance(message, BaseMessageChunk):  # what a streamed run adds up to (stream, astream)
        message = message_chunk_to_message(message)
    role = ROLES.get(message.type)
    if role is None:
        raise ValueError(f"cannot store a LangChain {message.type!r} message (human, ai, system and tool only)")
    metadata: dict[str, Any] = {}
    for field in COMMON:
        value = getattr(message, field)
        if value:
            metadata[field] = value
    if isinstance(message, AIMessage):
        if message.tool_calls:
            metadata["tool_calls"] = [_openai_tool_call(call) for call in message.tool_calls]
        if message.invalid_tool_calls:
            metadata["invalid_tool_calls"] = [dict(call) for call in message.invalid_tool_calls]
        if message.usage_metadata:
            metadata["usage_metadata"] = dict(message.usage_metadata)
    if isinstance(message, ToolMessage):
        metadata["tool_call_id"] = message.tool_call_id
        if message.status != "success":
            metadata["status"] = message.status
        if message.artifact is not None:
            metadata["artifact"] = message.artifact
    content = message.content
    if isinstance(content, str) and (content.strip() or (role == "assistant" and metadata)):
        return MessageIn(role=role, content=content, metadata=metadata)
    metadata["content"] = content
    text = message.text if isinstance(content, list) else ""
    return MessageIn(role=role, content=text if text.strip() else BLANK_PLACEHOLDER, metadata=metadata)


def from_store(stored: Message) -> BaseMessage:
    metadata = dict(stored.metadata)
    content: Any = metadata.pop("content", stored.content)
    common: dict[str, Any] = {field: metadata.pop(field) for field in COMMON if field in metadata}
    if stored.role == "user":
        return HumanMessage(content=content, **_with_extras(common, metadata))
    if stored.role == "system":
        return SystemMessage(content=content, **_with_extras(common, metadata))
    if stored.role == "tool":
        tool_fields: dict[str, Any] = {"tool_call_id": str(metadata.pop("tool_call_id", ""))}
        for field in ("status", "artifact"):
            if field in metadata:
                tool_fields[field] = metadata.pop(field)
        return ToolMessage(content=content, **tool_fields, **_with_extras(common, metadata))
    tool_calls, invalid = _from_openai_tool_calls(metadata.pop("tool_calls", []))
    invalid += [cast(InvalidToolCall, dict(call)) for call in metadata.pop("invalid_tool_calls", [])]
    ai_fields: dict[str, Any] = {"tool_calls": tool_calls, "invalid_tool_calls": invalid}
    if "usage_metadata" in metadata:
        ai_fields["usage_metadata"] = metadata.pop("usage_metadata")
    return AIMessage(content=content, **ai_fields, **_with_extras(common, metadata))


def _with_extras(common: dict[str, Any], unknown: dict[str, Any]) -> dict[str, Any]:
    if unknown:
        common["additional_kwargs"] = {**common.get("additional_kwargs", {}), **unknown}
    return common


def _openai_tool_call(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {"name": call["name"], "arguments": json.dumps(call["args"], ensure_ascii=False)},
    }


def _from_openai_tool_calls(calls: list[Any]) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    valid: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for call in calls:
        function = call.get("function", {}) if isinstance(call, dict) else {}
        name, arguments, call_id = function.get("name"), function.get("arguments", "{}"), call.get("id")
        try:
            args = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError:
            args = None
        if isinstance(args, dict) and isinstance(name, str):
            valid.append(ToolCall(name=name, args=args, id=call_id, type="tool_call"))
        else:
            text = arguments if isinstance(arguments, str) else None
            invalid.append(InvalidToolCall(name=name, args=text, id=call_id, error=None, type="invalid_tool_call"))
    return valid, invalid
