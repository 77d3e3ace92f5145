"""`chat export`: GET /chat/export copied to stdout as it streams, with a progress bar on
stderr when stderr is a terminal (its total is the header's message count)."""

from __future__ import annotations

import json
import re
from typing import IO, Any, TextIO

from tqdm import tqdm

from chat_client._client import Client

MESSAGE_LINE = re.compile(r'^\{\s*"type"\s*:\s*"message"')


def _header_counts(line: str) -> tuple[int | None, int | None]:
    try:
        header: Any = json.loads(line)
    except ValueError:
        return None, None
    if not isinstance(header, dict) or header.get("type") != "export":
        return None, None
    sessions, messages = header.get("sessions"), header.get("messages")
    return (sessions if isinstance(sessions, int) else None), (messages if isinstance(messages, int) else None)


def export(chat: Client, out: IO[bytes], err: TextIO) -> None:
    lines = chat.export_lines()
    progress: tqdm[Any] | None = None
    try:
        for number, line in enumerate(lines):
            if not line:
                continue
            out.write(line.encode() + b"\n")
            if number == 0 and err.isatty():
                sessions, messages = _header_counts(line)
                description = f"{sessions} sessions" if sessions is not None else "export"
                progress = tqdm(total=messages, desc=description, unit="msg", file=err, dynamic_ncols=True)
            elif progress is not None and MESSAGE_LINE.match(line):
                progress.update(1)
        out.flush()
    finally:
        if progress is not None:
            progress.close()
