"""An import's upload, written to an owner-only temporary file under DATA_DIR as it arrives
(never held in memory): the request body itself, or the `file` field of a multipart form
(parsed as a stream with python-multipart). The file is unlinked at once, so nothing is left
behind even by a crash."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from app.core.errors import AppError, UnprocessableContent
from app.core.private_files import PRIVATE_DIR_MODE
from app.transfer.schemas import ImportFormat

IMPORTS_DIR = "imports"
FILE_FIELD = b"file"
ZIP_MAGIC = b"PK\x03\x04"
CONTENT_TYPES: dict[str, ImportFormat] = {
    "application/x-ndjson": "chat-export",
    "application/jsonl": "chat-export",
    "application/json": "chatgpt-json",
    "application/zip": "chatgpt-zip",
    "application/x-zip-compressed": "chatgpt-zip",
}


class PayloadTooLarge(AppError):
    status_code = 413
    detail = "The import is larger than IMPORT_MAX_BYTES"


def private_temporary_file(data_dir: Path) -> IO[bytes]:
    directory = data_dir / IMPORTS_DIR
    directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    os.chmod(directory, PRIVATE_DIR_MODE)
    return tempfile.TemporaryFile(dir=directory)  # created 0600, already unlinked


async def receive_upload(
    chunks: AsyncIterator[bytes], content_type: str, target: IO[bytes], max_bytes: int
) -> ImportFormat:
    """Write the upload to `target`; the format its Content-Type, or else its first bytes, say."""
    media_type, options = parse_options_header(content_type)
    media = media_type.decode("latin-1").lower()
    if media == "multipart/form-data":
        part_type = await _receive_file_field(chunks, options.get(b"boundary", b""), target, max_bytes)
        declared = CONTENT_TYPES.get(part_type)
    else:
        written = 0
        async for chunk in chunks:
            written += len(chunk)
            if written > max_bytes:
                raise PayloadTooLarge()
            target.write(chunk)
        declared = CONTENT_TYPES.get(media)
    target.flush()
    return declared or sniff_format(target)


async def _receive_file_field(chunks: AsyncIterator[bytes], boundary: bytes, target: IO[bytes], max_bytes: int) -> str:
    """Stream the `file` part into `target`; its own Content-Type (or "")."""
    if not boundary:
        raise UnprocessableContent("the multipart body has no boundary")
    state: dict[str, object] = {"name": None, "type": "", "found": False, "written": 0}
    header: dict[str, bytes] = {"field": b"", "value": b""}
    headers: dict[bytes, bytes] = {}

    def on_part_begin() -> None:
        headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        headers[header["field"].lower()] = header["value"]
        header["field"], header["value"] = b"", b""

    def on_headers_finished() -> None:
        _, options = parse_options_header(headers.get(b"content-disposition", b""))
        state["name"] = options.get(b"name")
        if state["name"] == FILE_FIELD:
            state["found"] = True
            state["type"] = parse_options_header(headers.get(b"content-type", b""))[0].decode("latin-1").lower()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["name"] != FILE_FIELD:
            return
        written = int(str(state["written"])) + end - start
        if written > max_bytes:
            raise PayloadTooLarge()
        state["written"] = written
        target.write(data[start:end])

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise UnprocessableContent("the multipart body is malformed") from exc
    if not state["found"]:
        raise UnprocessableContent("the multipart form has no `file` field")
    return str(state["type"])


def sniff_format(target: IO[bytes]) -> ImportFormat:
    target.seek(0)
    start = target.read(4096).lstrip()
    if start.startswith(ZIP_MAGIC):
        return "chatgpt-zip"
    if start.startswith(b"["):
        return "chatgpt-json"
    if start.startswith(b"{"):
        return "chat-export"
    raise UnprocessableContent("not an import this server reads: give our NDJSON export or a ChatGPT export")
