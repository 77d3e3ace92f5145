"""Which database `chat-admin` works on: the one the server uses, found the way the server
finds it, and said on stderr on every run.

- MONGODB_URI set: that database (its password never printed).
- Otherwise the embedded database under DATA_DIR (made absolute):
  - a running server's: DATA_DIR/mongodb.uri (0600) holds its URI, pinged first;
  - no server running: the database files are opened by starting the embedded database for
    the command's duration (no server may start on DATA_DIR meanwhile);
  - a server holds DATA_DIR but its database does not answer: refused, never shared;
  - no database in DATA_DIR yet: refused (a wrong DATA_DIR would otherwise become a new,
    empty database), unless `--init` asks for one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from app.admin.cli import say
from app.core.config import Settings
from app.core.db import Database, close_client, open_database, redact_uri
from app.core.embedded import (
    STORAGE_DIR_NAME,
    URI_FILE_NAME,
    EmbeddedDatabase,
    EmbeddedDatabaseError,
    database_in_use,
)

PING_TIMEOUT_MS = 1000


class Refused(Exception):
    """chat-admin will not open a database: the message says why and what to do."""


async def running_embedded_uri(data_dir: Path) -> str | None:
    """The URI in DATA_DIR/mongodb.uri when a database answers there; None otherwise."""
    try:
        uri = (data_dir / URI_FILE_NAME).read_text().strip()
    except FileNotFoundError:
        return None
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        uri, serverSelectionTimeoutMS=PING_TIMEOUT_MS, connectTimeoutMS=PING_TIMEOUT_MS, timeoutMS=PING_TIMEOUT_MS
    )
    try:
        await client.admin.command("ping")
    except PyMongoError:
        say(f"ignoring stale {data_dir / URI_FILE_NAME} (nothing answers there)")
        return None
    finally:
        await client.close()
    return uri


def has_database(data_dir: Path) -> bool:
    storage = data_dir / STORAGE_DIR_NAME
    return storage.is_dir() and any(storage.iterdir())


@asynccontextmanager
async def connect(settings: Settings, init: bool = False) -> AsyncIterator[Database]:
    """The server's database, opened for one command; `init` allows a new embedded one."""
    configured = settings.mongodb_uri.get_secret_value()
    data_dir = settings.data_dir.resolve()
    embedded: EmbeddedDatabase | None = None
    if configured:
        uri = configured
        say(f"database: {redact_uri(uri)} (MONGODB_URI), name {settings.mongodb_db}")
    elif running := await running_embedded_uri(data_dir):
        uri = running
        say(f"database: the running server's embedded database in {data_dir}")
    else:
        holder = database_in_use(data_dir)
        if holder is not None:
            raise Refused(
                f"{data_dir} is held by a running server (pid {holder}) whose database does not answer; "
                "wait until it is up, or stop it"
            )
        if not has_database(data_dir) and not init:
            raise Refused(
                f"no database in {data_dir}: is DATA_DIR right? It must be the server's "
                "(the folder where `make run` runs has ./data). `--init` creates a new, empty one there"
            )
        new = not has_database(data_dir)
        embedded = EmbeddedDatabase(data_dir)
        try:
            uri = await embedded.start()
        except EmbeddedDatabaseError as exc:
            raise Refused(f"cannot open the embedded database in {data_dir}: {str(exc).splitlines()[0]}") from exc
        state = "a new, empty" if new else "the"
        say(f"database: {state} embedded database in {data_dir}, started for this command (no server runs on it)")
    try:
        database = await open_database(uri, settings)
        try:
            yield database
        finally:
            await close_client(database.client)
    finally:
        if embedded is not None:
            await embedded.stop()
