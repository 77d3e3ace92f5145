"""ChatGPT's data export: `conversations.json` (a JSON array of conversations), or the zip
ChatGPT produces, holding one or several conversation files (`conversations.json`,
`conversations-000.json`, ...) next to attachments, which are not read.

Each conversation is a tree of nodes (`mapping`, linked by `parent`): edits and regenerations
are branches. The conversation as it was last shown is the path from the root to
`current_node`, which is what is imported. Roles, text parts and create times are kept, and
the conversation's create and update times become the session's; the model slug goes to the
message's metadata; parts that are not text (images, files, ...) are
listed in metadata under `non_text_parts`, never a failure.

Arrays are read with ijson (streamed), one conversation in memory at a time, within the
bounds of app.transfer.bounded_json; a zip's conversation files may unpack to no more than
`ReadBounds.unzipped_bytes` in all (a ratio of the zip's size, and a cap).
"""

from __future__ import annotations

import lzma
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Any

import ijson  # type: ignore[import-untyped]

from app.transfer.bounded_json import CheckedReader, array_items
from app.transfer.conversations import (
    Conversation,
    ImportedMessage,
    ImportFormatError,
    Unreadable,
    from_epoch,
    short,
    typed,
)

PLATFORM = "chatgpt"
SOURCE_PREFIX = "chatgpt:"
ROLES = {"user", "assistant", "system", "tool"}
TEXT_FIELDS = ("text", "result")  # code, execution output, browsing results carry their text here
MAX_DEPTH = 100_000
VALUES_PER_MESSAGE = 100  # JSON values a conversation may hold per message it may have (branches, metadata)
UNZIPPED_FLOOR = 1024 * 1024
READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_DAMAGED = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError)  # OSError: bz2's


@dataclass(frozen=True)
class ReadBounds:
    values_per_conversation: int
    unzipped_bytes: int  # what a zip's conversation files may unpack to, in all

    @classmethod
    def of(cls, max_messages: int, unzipped_bytes: int) -> ReadBounds:
        return cls(max(max_messages * VALUES_PER_MESSAGE, 10_000), unzipped_bytes)


def read_json(stream: IO[bytes], bounds: ReadBounds) -> Iterator[Conversation | Unreadable]:
    reader = CheckedReader(stream, bounds.unzipped_bytes, "the conversation files are too large once unpacked")
    yield from _read_array(reader, bounds)


def _read_array(reader: CheckedReader, bounds: ReadBounds) -> Iterator[Conversation | Unreadable]:
    try:
        for index, item in enumerate(array_items(reader, bounds.values_per_conversation, "conversation")):
            yield _conversation(item, index)
    except ijson.JSONError as exc:
        raise ImportFormatError("conversations.json is not a valid JSON array of conversations") from exc


def conversation_files(archive: zipfile.ZipFile, max_bytes: int) -> list[zipfile.ZipInfo]:
    members = [
        info
        for info in archive.infolist()
        if PurePosixPath(info.filename).name.startswith("conversations")
        and info.filename.endswith(".json")
        and not info.is_dir()
    ]
    if not members:
        raise ImportFormatError("the zip holds no conversations.json")
    if sum(info.file_size for info in members) > max_bytes:
        raise ImportFormatError(_too_large(max_bytes))
    for info in members:
        if info.flag_bits & 0x1:
            raise ImportFormatError(f"{short(info.filename)} in the zip is encrypted")
        if info.compress_type not in READABLE_METHODS:
            raise ImportFormatError(
                f"{short(info.filename)} in the zip is compressed with method {info.compress_type}, "
                "which is not read (use deflate, as ChatGPT does)"
            )
    return sorted(members, key=lambda info: info.filename)


def unzipped_bound(zip_bytes: int, ratio: int, cap: int) -> int:
    """What a zip of `zip_bytes` may unpack to: `ratio` times its size (at least a small
    UNZIPPED_FLOOR, harmless whatever it holds), and never more than `cap`."""
    return min(max(zip_bytes * ratio, UNZIPPED_FLOOR), cap)


def _too_large(max_bytes: int) -> str:
    return (
        f"the zip's conversation files unpack to more than {max_bytes} bytes "
        "(IMPORT_MAX_UNZIPPED_RATIO times the zip's size, at most IMPORT_MAX_UNZIPPED_BYTES)"
    )


def read_zip(stream: IO[bytes], bounds: ReadBounds) -> Iterator[Conversation | Unreadable]:
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile as exc:
        raise ImportFormatError("not a valid zip file") from exc
    budget = bounds.unzipped_bytes
    with archive:
        for info in conversation_files(archive, budget):
            try:
                with archive.open(info) as member:
                    reader = CheckedReader(member, budget, _too_large(bounds.unzipped_bytes))
                    yield from _read_array(reader, bounds)
                    budget -= reader.read_bytes
            except ImportFormatError:
                raise
            except _DAMAGED as exc:
                raise ImportFormatError(f"{short(info.filename)} in the zip is damaged: {_why(exc)}") from exc


def _why(exc: Exception) -> str:
    """What zipfile or zlib said, without any of the member's content."""
    if isinstance(exc, zipfile.BadZipFile) and "CRC" in str(exc):
        return "its checksum (CRC-32) does not match"
    return short(type(exc).__name__ + ": " + str(exc), 120)


def _conversation(item: Any, index: int) -> Conversation | Unreadable:
    if not isinstance(item, dict):
        return Unreadable(f"#{index + 1}", "not a conversation object")
    raw_id = item.get("conversation_id") or item.get("id")
    title = typed(item, "title", str, "")
    label = short(title or f"#{index + 1}")
    if not isinstance(raw_id, str) or not raw_id:
        return Unreadable(label, "the conversation has no id")
    mapping = item.get("mapping")
    current = item.get("current_node")
    if not isinstance(mapping, dict) or not isinstance(current, str) or current not in mapping:
        return Unreadable(label, "the conversation has no message tree (mapping and current_node)")
    metadata: dict[str, Any] = {}
    if isinstance(item.get("default_model_slug"), str):
        metadata["model"] = item["default_model_slug"][:200]
    created = from_epoch(item.get("create_time"))
    conversation = Conversation(SOURCE_PREFIX + raw_id[:200], title.strip() or "Untitled", PLATFORM, metadata)
    conversation.created_at, conversation.updated_at = created, from_epoch(item.get("update_time"))
    for node_id in _current_path(mapping, current):
        node = mapping[node_id]
        message = node.get("message") if isinstance(node, dict) else None
        if isinstance(message, dict):
            _add_message(conversation, node_id, message, created)
    return conversation


def _current_path(mapping: dict[str, Any], current: str) -> list[str]:
    """Node ids from the root to `current`, following `parent` (a cycle ends the walk)."""
    path: list[str] = []
    seen: set[str] = set()
    node_id: Any = current
    while isinstance(node_id, str) and node_id in mapping and node_id not in seen and len(path) < MAX_DEPTH:
        seen.add(node_id)
        path.append(node_id)
        node = mapping[node_id]
        node_id = node.get("parent") if isinstance(node, dict) else None
    return path[::-1]


def _add_message(conversation: Conversation, node_id: str, message: dict[str, Any], fallback: Any) -> None:
    author = message.get("author")
    role = author.get("role") if isinstance(author, dict) else None
    if role not in ROLES:
        conversation.skipped.append((node_id, "unknown author role"))
        return
    content: dict[str, Any] = typed(message, "content", dict, {})
    texts, others = _parts(content)
    metadata: dict[str, Any] = {}
    model = typed(typed(message, "metadata", dict, {}), "model_slug", str, "")
    if model:
        metadata["model"] = model[:200]
    if others:
        metadata["non_text_parts"] = others[:50]
    text = "\n\n".join(t for t in texts if t)
    if not text.strip():
        if not others:
            conversation.skipped.append((node_id, "empty message"))
            return
        text = "[" + ", ".join(part["content_type"] for part in others[:10]) + "]"
    created = from_epoch(message.get("create_time")) or fallback
    conversation.messages.append(ImportedMessage(node_id[:200], role, text, metadata, created))


def _parts(content: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The text of a message's content, and a note of each part that is not text."""
    content_type = typed(content, "content_type", str, "unknown")
    texts: list[str] = []
    others: list[dict[str, Any]] = []
    parts = content.get("parts")
    if isinstance(parts, list):
        for part in parts:
            if isinstance(part, str):
                texts.append(part)
            else:
                kind = part.get("content_type") if isinstance(part, dict) else None
                others.append({"content_type": kind[:64] if isinstance(kind, str) else type(part).__name__})
        return texts, others
    for field in TEXT_FIELDS:
        if isinstance(content.get(field), str):
            return [content[field]], []
    return [], [{"content_type": content_type[:64]}]
