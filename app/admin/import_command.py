"""`chat-admin import --user NAME FILE`: the import of POST /chat/import, from a file on this
machine, with a progress bar on a terminal; prints the report as JSON."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from app.admin import service
from app.core.config import Settings
from app.core.db import Database
from app.transfer.importer import ImportLimits, run_import
from app.transfer.upload import PayloadTooLarge, sniff_format


async def import_file(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    user = await service.find_user_by_name(database, args.user)
    limits = ImportLimits.from_settings(settings)
    with open(args.file, "rb") as stream:
        if args.file.stat().st_size > limits.max_bytes:
            raise PayloadTooLarge("The file is larger than IMPORT_MAX_BYTES")
        kind = sniff_format(stream)
        with tqdm(unit="conversation", disable=not sys.stderr.isatty(), file=sys.stderr) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            report = await run_import(database, user.id, stream, kind, limits, progress)
    print(report.model_dump_json(indent=2))
