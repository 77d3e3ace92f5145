"""One change stream per server process, feeding the ChangeHub.

It watches the given collections of the app's database and publishes every insert, update
and replace whose full document carries the owner field. An insert's document is in the change
itself; an update's is looked up when the event is read (`updateLookup`), so it is the
document as it is then, and nothing once it is deleted: such an update is dropped, and an
event that must not be lost never depends on it. Deletes carry only the `_id`: a domain that
needs deletions seen inserts a record of the deletion (with its owner) in the delete's
transaction, and that insert's event is the deletion's. Event ids are the
change stream's resume tokens, so they are the same on every server watching the database
and a client may reconnect to any of them.

When the stream breaks (the database restarts, a failover) it is reopened after the last
resume token it reached (with a no-op heartbeat on the server, that token moves even while
nothing is written). When that is impossible (the history was pruned, the stream was
invalidated) it starts again from the present and, once open, resets every subscriber (they
resync over REST after that point): never a silent gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pymongo.errors import OperationFailure, PyMongoError

from app.core.background import stop_within
from app.core.changes import Change, ChangeHub
from app.core.db import Database

log = logging.getLogger(__name__)

OWNER_FIELD = "user_id"
MAX_AWAIT_MS = 250  # also how long a stop waits for the current getMore
RETRY_FIRST_SECONDS = 0.2
RETRY_MAX_SECONDS = 5.0
STOP_TIMEOUT_SECONDS = 5.0
WATCHED_OPERATIONS = ("insert", "update", "replace")
# The server cannot resume from the token: ChangeStreamHistoryLost, ChangeStreamFatalError,
# and the invalidation of a dropped collection or database.
UNRESUMABLE_CODES = frozenset({260, 280, 286})


class ChangeStreamWatcher:
    def __init__(self, database: Database, hub: ChangeHub, collections: list[str]) -> None:
        self.database = database
        self.hub = hub
        self.pipeline = [
            {"$match": {"ns.coll": {"$in": collections}, "operationType": {"$in": list(WATCHED_OPERATIONS)}}}
        ]
        self.resume_token: Mapping[str, Any] | None = None
        self.opened = asyncio.Event()
        self.stop = asyncio.Event()
        self._history_lost = False

    async def run(self) -> None:
        delay = RETRY_FIRST_SECONDS
        while not self.stop.is_set():
            try:
                await self._follow()
            except OperationFailure as exc:
                if exc.code in UNRESUMABLE_CODES or self.resume_token is None:
                    self._lose_history(exc)
                else:
                    log.warning("the change stream broke; resuming", extra={"error": _short(exc)})
            except PyMongoError as exc:
                log.warning("the change stream broke; resuming", extra={"error": _short(exc)})
            else:
                delay = RETRY_FIRST_SECONDS
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def _follow(self) -> None:
        stream = await self.database.db.watch(
            self.pipeline,
            full_document="updateLookup",
            resume_after=self.resume_token,
            max_await_time_ms=MAX_AWAIT_MS,
        )
        async with stream:
            if self.opened.is_set() and self.resume_token is not None:
                log.info("the change stream resumed")
            self.opened.set()
            if self._history_lost:  # from now on nothing is missed: the clients resync
                self._history_lost = False
                self.hub.reset_all()
            while stream.alive and not self.stop.is_set():
                change = await stream.try_next()
                if change is not None:
                    self._publish(change)
                self.resume_token = stream.resume_token

    def _publish(self, change: Mapping[str, Any]) -> None:
        document = change.get("fullDocument")
        if not isinstance(document, dict) or OWNER_FIELD not in document:
            return  # an update of a document deleted since (its deletion has its own event)
        token = str(change["_id"]["_data"])
        collection = str(change["ns"]["coll"])
        self.hub.publish(Change(token, collection, str(change["operationType"]), document, document[OWNER_FIELD]))

    def _lose_history(self, exc: OperationFailure) -> None:
        log.warning(
            "the change stream cannot resume; every event stream client is reset",
            extra={"error": _short(exc), "code": exc.code},
        )
        self.resume_token = None
        self._history_lost = True


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


@contextlib.asynccontextmanager
async def watch_changes(
    database: Database, hub: ChangeHub, collections: list[str], open_timeout: float
) -> AsyncIterator[ChangeStreamWatcher]:
    """Follow the collections for the lifetime of the block; the block starts once the stream
    is open (a write made after start-up is seen), or after `open_timeout` with a warning."""
    watcher = ChangeStreamWatcher(database, hub, collections)
    task = asyncio.create_task(watcher.run(), name="change-stream")
    try:
        try:
            await asyncio.wait_for(watcher.opened.wait(), open_timeout)
        except TimeoutError:
            log.warning("the change stream did not open in time; it keeps trying")
        yield watcher
    finally:
        watcher.stop.set()  # stopped between commands (see background.stop_within)
        await stop_within(task, STOP_TIMEOUT_SECONDS)
