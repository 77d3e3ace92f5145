"""Conversation items <-> our messages.

An item is stored as one message: role, content and metadata as our UI and /chat readers
understand them (chat text, an assistant turn with `tool_calls`, a `tool` result), and the
item itself, as written, in the message's `original` field, from which it is given back.

    item                               message role  content                 metadata
    message user/system/assistant      same          its text parts, joined  {}
    message developer                  system        its text parts, joined  {}
    function_call                      assistant     ""                      {"tool_calls": [{id, type, function}]}
    function_call_output               tool          the output's text       {"tool_call_id": call_id, "name"}
    any other type (reasoning, ...)    assistant     its text, if any        {"type": the item's type}

The item keeps every field as written; only `id` is ours (`msg_<message id>`, the bare id on
/chat), and a message written as `{"role", "content"}` reads back with `"type": "message"` and
its string content as one text part, the shape OpenAI answers with. A message posted over
/chat (no `original`) reads back as the item it maps from. A tool result's `name` is its
call's, when the call came in the same request (conversations.messages_of).
"""

from __future__ import annotations

from typing import Any

from app.chat.metadata import MetadataError, validate_json, validate_metadata
from app.chat.schemas import CONTENT_MAX, MessageCreate, Role
from app.core.db import Document
from app.openai_compat.errors import InvalidParameter

ITEM_PREFIX = "msg_"
ITEM_MAX_BYTES = 64 * 1024  # an item as JSON; its text is bounded by CONTENT_MAX as well
MESSAGE_ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
TEXT_PART_TYPES = ("input_text", "output_text", "summary_text", "reasoning_text", "text")

Item = dict[str, Any]


def item_id(message_id: object) -> str:
    return f"{ITEM_PREFIX}{message_id}"


def bare_item_id(raw: str) -> str:
    return raw.removeprefix(ITEM_PREFIX)


def _text_of_parts(parts: list[Any]) -> str:
    """The text of content parts; a part without text (an image, a file) shows as `[its type]`."""
    texts = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
        elif isinstance(part.get("type"), str):
            texts.append(f"[{part['type']}]")
    return "\n".join(texts)


def _require_str(item: Item, key: str, param: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidParameter(f"{param}.{key}", f"'{param}.{key}' must be a string")
    return value


def _message_content(item: Item, param: str) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(part, dict) and isinstance(part.get("type"), str) for part in content
    ):
        return _text_of_parts(content)
    raise InvalidParameter(f"{param}.content", f"'{param}.content' must be a string or a list of typed parts")


def _output_text(output: object, param: str) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return _text_of_parts(output)
    raise InvalidParameter(f"{param}.output", f"'{param}.output' must be a string or a list of parts")


def _check_shape(item: object, param: str) -> Item:
    if not isinstance(item, dict):
        raise InvalidParameter(param, f"'{param}' must be an object")
    try:
        validate_json(item, ITEM_MAX_BYTES)
    except (MetadataError, UnicodeEncodeError) as exc:
        reason = str(exc).replace("metadata", "item") if isinstance(exc, MetadataError) else "holds invalid Unicode"
        raise InvalidParameter(param, f"'{param}': {reason}") from exc
    return item


def to_message(raw: object, param: str) -> tuple[MessageCreate, Item]:
    """The message an item is stored as, and the item to keep as written (without an `id`:
    the stored message's id is the item's); InvalidParameter naming `param` otherwise."""
    item = _check_shape(raw, param)
    item_type = item.get("type", "message" if "role" in item else None)
    if not isinstance(item_type, str) or not item_type:
        raise InvalidParameter(f"{param}.type", f"'{param}.type' is required")
    role: Role
    metadata: Document = {}
    if item_type == "message":
        given_role = item.get("role")
        if given_role not in MESSAGE_ROLES:
            raise InvalidParameter(f"{param}.role", f"'{param}.role' must be one of user, assistant, system, developer")
        role, content = MESSAGE_ROLES[given_role], _message_content(item, param)
    elif item_type == "function_call":
        call_id, name = _require_str(item, "call_id", param), _require_str(item, "name", param)
        arguments = _require_str(item, "arguments", param)
        role, content = "assistant", ""
        metadata = {
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]
        }
    elif item_type == "function_call_output":
        call_id = _require_str(item, "call_id", param)
        role, content = "tool", _output_text(item.get("output"), param)
        metadata = {"tool_call_id": call_id}
    else:
        role, content = "assistant", _unmodelled_text(item)
        metadata = {"type": item_type}
    try:
        validate_metadata(metadata)
    except MetadataError as exc:
        raise InvalidParameter(param, f"'{param}': {exc}") from exc
    if len(content) > CONTENT_MAX:
        raise InvalidParameter(param, f"'{param}': its text is longer than {CONTENT_MAX} characters")
    original = {key: value for key, value in item.items() if key != "id"}
    # Built without MessageCreate's validation: that rule (no blank text but for an assistant's
    # tool calls) is /chat's; an item's text may be empty (a tool's empty output).
    return MessageCreate.model_construct(role=role, content=content, metadata=metadata), original


def _unmodelled_text(item: Item) -> str:
    parts = [part for key in ("summary", "content") if isinstance(item.get(key), list) for part in item[key]]
    return _text_of_parts(parts)


def to_item(message: Document) -> Item:
    """The item a stored message reads back as."""
    original = message.get("original")
    fields = original if isinstance(original, dict) else _derived_item(message)
    item = {"id": item_id(message["_id"]), "type": fields.get("type", "message"), **fields}
    if item["type"] == "message" and isinstance(item.get("content"), str):
        item["content"] = [{"type": _text_part_type(item.get("role")), "text": item["content"]}]
    return item


def _text_part_type(role: object) -> str:
    return "output_text" if role == "assistant" else "input_text"


def _derived_item(message: Document) -> Item:
    """An item for a message written over /chat: a tool result, an assistant's (first) tool
    call when it has no text, or a message."""
    role, content, metadata = message["role"], message["content"], message.get("metadata") or {}
    if role == "tool":
        call_id = metadata.get("tool_call_id")
        return {
            "type": "function_call_output",
            "call_id": call_id if isinstance(call_id, str) else "",
            "output": content,
        }
    calls = metadata.get("tool_calls")
    if role == "assistant" and not content and isinstance(calls, list) and calls and isinstance(calls[0], dict):
        function = calls[0].get("function")
        function = function if isinstance(function, dict) else {}
        return {
            "type": "function_call",
            "call_id": str(calls[0].get("id", "")),
            "name": str(function.get("name", "")),
            "arguments": str(function.get("arguments", "")),
        }
    return {"type": "message", "role": role, "content": [{"type": _text_part_type(role), "text": content}]}
