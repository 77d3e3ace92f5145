"""`chat import FILE`: the file sent to POST /chat/import as it is read, with a progress bar
of the bytes sent on stderr when stderr is a terminal; the report printed when done."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from chat_client._client import Client
from chat_client._models import ImportReport


def import_file(chat: Client, path: Path, err: TextIO) -> ImportReport:
    if not err.isatty():
        return chat.import_file(path)
    size = path.stat().st_size
    with tqdm(total=size, desc=path.name, unit="B", unit_scale=True, file=err, dynamic_ncols=True) as progress:

        def advance(sent: int) -> None:
            if progress.n + sent > size:  # a retry sends the file again: start the bar over
                progress.reset()
            progress.update(sent)

        return chat.import_file(path, advance)


def summary(report: ImportReport) -> str:
    lines = [
        f"sessions: {report.sessions.created} created, {report.sessions.unchanged} unchanged",
        f"messages: {report.messages.created} created, {report.messages.unchanged} unchanged",
    ]
    if report.skipped_total:
        lines.append(f"skipped: {report.skipped_total}")
        lines += [
            f"  {item.conversation}: {item.message or 'whole conversation'}: {item.reason}" for item in report.skipped
        ]
    return "\n".join(lines)
