"""The search indexer: builds search_message_terms behind the writes, so a message's write
costs the same few index writes whatever its text.

It follows the messages collection's change stream from a resume token stored in MongoDB.
The stream delivers inserts and deletes in commit order, so a message whose transaction
commits after a later one's is still seen (a position over a field such as `_id` or a time
would pass it by: a gap); the token is saved after each applied batch, so a crash replays at
most that batch, and a replayed insert is a duplicate key, ignored (app.chat.search_index).

Without a token (the first start, or history the server no longer holds) it rebuilds: it
opens the stream first and keeps its token, then scans every stored message by `_id` in
bounded batches (progress saved, resumable), then follows the stream from that token; a
message written during the scan is seen by one or both, indexed once.

One indexer at a time across server processes: the holder of a lease in search_indexer
indexes; the others look again every LEASE_SECONDS / 2 and take over once a dead holder's
lease has run out. Each batch holds one of the DB_MAX_TRANSACTIONS slots while it writes, and
queues for it behind requests like any of them, so indexing never takes more than one.

Where there are no change streams (a standalone MongoDB) nothing is indexed behind the writes
and search finds nothing new: the server warns at start and /readyz reports the index as not
available (run MongoDB as a replica set). No fallback follows the messages by position: on a
standalone, ids are made before their inserts land (a slow batch lands after later ids: a
position over `_id` passes it by), and a reply's final text arrives by update, which no
position over inserts sees; a fallback that misses messages silently is worse than none.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pymongo
from bson import ObjectId, Timestamp
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import OperationFailure, PyMongoError

from app.auth.repository import existing_user_ids
from app.chat import search_index
from app.core.background import stop_within
from app.core.change_stream import UNRESUMABLE_CODES
from app.core.db import MESSAGES, Database, Document
from app.core.types import utc_now

log = logging.getLogger(__name__)

LEASE_SECONDS = 10.0
MAX_AWAIT_MS = 200
BATCH_MESSAGES = 200
BATCH_CHARS = 2_000_000  # of message text per batch: bounds a batch's memory and time
TERMS_PER_WRITE = 2000
MERGE_EVERY = 16  # batches: see _merge
MERGES_PER_TURN = 32  # buckets
BUCKETS_PER_MERGE = 8  # a user's, in one transaction
BATCH_WAIT_SECONDS = 0.1
SCAN_WINDOW = timedelta(minutes=1)
MAX_SCAN_WINDOW = timedelta(days=365)
RETRY_SECONDS = 1.0
INDEXER_OWNER = "search-indexer"  # takes its turn for a transaction slot as a user does
STOP_TIMEOUT_SECONDS = 10.0
RELEASE_TIMEOUT_SECONDS = 0.5
REBUILD_ROUNDS = 5
HISTORY_LOST = 286  # ChangeStreamHistoryLost
OPERATIONS = ["insert", "update", "delete", "invalidate", "drop"]
PIPELINE = [{"$match": {"ns.coll": MESSAGES, "operationType": {"$in": OPERATIONS}}}]
# A reply the server writes (app.assistant) is inserted empty while `streaming` and updated as it
# grows; once it is no longer streaming its text is final, and it is indexed again then.
STREAMING = "streaming"
NOT_AVAILABLE = (
    "the database has no change streams (a standalone server): new messages are not indexed "
    "for search; run MongoDB as a replica set (a single node is enough)"
)


class _LeaseLost(Exception):
    pass


class _Rebuild(Exception):
    """The stream cannot go on from its token: index from the stored messages again (at once
    when the history was trimmed; after a pause when the database or collection was dropped:
    the server may be going)."""

    def __init__(self, at_once: bool = False) -> None:
        super().__init__()
        self.at_once = at_once


@dataclass
class IndexStatus:
    """What /readyz reports: `caught_up_at` is the last time the index held every message
    committed before it; `lag_seconds` the time since then (about MAX_AWAIT_MS when idle)."""

    indexing: bool
    caught_up_at: datetime | None
    rebuilding: bool
    available: bool = True  # False on a database without change streams: nothing is indexed

    def report(self, now: datetime) -> dict[str, Any]:
        lag = None if self.caught_up_at is None else max(0.0, (now - self.caught_up_at).total_seconds())
        report: dict[str, Any] = {
            "available": self.available,
            "lag_seconds": None if lag is None else round(lag, 3),
            "caught_up_at": None if self.caught_up_at is None else self.caught_up_at.isoformat(),
            "rebuilding": self.rebuilding,
            "indexer_here": self.indexing,
        }
        if not self.available:
            report["detail"] = NOT_AVAILABLE
        return report


class SearchIndexer:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{ObjectId()}"
        self.stop = asyncio.Event()
        self.holding = False
        self.caught_up_at: datetime | None = None
        self.rebuilding = False
        self.available = database.supports_transactions  # a replica set: it has change streams
        self._unmerged: set[tuple[ObjectId, int]] = set()  # (user, bucket) with count deltas
        self._merging: set[tuple[ObjectId, int]] = set()  # of those, the ones a merge under way folds in
        self._batches = 0  # indexed since the last merge started

    async def status(self) -> IndexStatus:
        """This process's view when it indexes; else the holder's last saved one."""
        if not self.available:
            return IndexStatus(False, None, False, available=False)
        if self.holding:
            return IndexStatus(True, self.caught_up_at, self.rebuilding)
        state = await search_index.indexer_state(self.database.db) or {}
        return IndexStatus(False, state.get("caught_up_at"), bool(state.get("rebuilding")))

    async def run(self) -> None:
        while not self.stop.is_set():
            wait = LEASE_SECONDS / 2
            try:
                state = await self._lease()
                if state is not None:
                    self.holding = True
                    await self._index(state)
            except _LeaseLost:
                log.warning("the search indexer lost its lease to another server")
            except PyMongoError as exc:
                log.warning("the search indexer failed; retrying", extra={"error": _short(exc)})
                wait = RETRY_SECONDS
            self.holding = False
            await self._pause(wait)
        # A courtesy to the next holder (the lease runs out anyway): never worth delaying a stop.
        with contextlib.suppress(PyMongoError), pymongo.timeout(RELEASE_TIMEOUT_SECONDS):
            await search_index.release_lease(self.database.db, self.holder, utc_now())

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def _lease(self) -> Document | None:
        now = utc_now()
        return await search_index.take_lease(self.database.db, self.holder, now, now + _lease_time())

    async def _save(self, state: Document) -> None:
        if not await search_index.save_state(self.database.db, self.holder, utc_now() + _lease_time(), state):
            raise _LeaseLost

    async def _index(self, state: Document) -> None:
        self._unmerged = await search_index.unmerged_buckets(self.database.db)  # a former holder's too
        self._merging = set()
        token = state.get("token")
        if token is None or state.get("rebuilding"):
            token = await self._rebuild(state)
        while not self.stop.is_set():
            try:
                token = await self._follow(token)
            except _Rebuild as rebuild:
                if not rebuild.at_once:
                    await self._pause(LEASE_SECONDS / 2)
                if not self.stop.is_set():
                    token = await self._rebuild({})

    async def _rebuild(self, state: Document) -> Mapping[str, Any]:
        """Index every stored message again (entries there already stay as they are)."""
        self.rebuilding = True
        self.caught_up_at = None
        db = self.database.db
        token = state.get("token") if state.get("rebuilding") else None
        until = state.get("rebuild_until")
        after = state.get("rebuild_after")
        if token is None:
            token = await self._current_token()
            until, after = await search_index.newest_message_id(db), None
            await self._save({"token": token, "rebuilding": True, "rebuild_until": until, "rebuild_after": None})
            log.info("search index: rebuilding from the stored messages")
        added = 0
        width = SCAN_WINDOW
        for _ in range(REBUILD_ROUNDS):
            while until is not None and (after is None or after < until) and not self.stop.is_set():
                start = after.generation_time if after is not None else await _oldest_time(self.database)
                before = min(ObjectId.from_datetime(start + width), _next_id(until))
                async with self.database.transaction_slots.hold(INDEXER_OWNER):
                    batch = await search_index.messages_after(db, after, before, BATCH_MESSAGES)
                added += await self._add(batch)
                after = batch[-1]["_id"] if len(batch) == BATCH_MESSAGES else _previous_id(before)
                await self._save({"rebuild_after": after})
                await self._merge(idle=False)
                width = (
                    max(width / 2, timedelta(seconds=1))
                    if len(batch) == BATCH_MESSAGES
                    else min(width * 4, MAX_SCAN_WINDOW)
                )
                log.info("search index: rebuilding", extra={"indexed": added, "position": str(after)})
            # A message committed just before the token may not have been visible to the read of
            # the newest id yet (it is in no change after the token either): scan up to the newest
            # id again until it stands still.
            newest = None if self.stop.is_set() else await search_index.newest_message_id(db)
            if newest is None or (until is not None and newest <= until):
                break
            until = newest
            await self._save({"rebuild_until": until})
        if self.stop.is_set():
            return token
        await self._merge(idle=True)
        await self._save({"rebuilding": False})
        self.rebuilding = False
        log.info("search index: rebuilt", extra={"indexed": added})
        return token

    async def _current_token(self) -> Mapping[str, Any]:
        """A token from before the scan starts: a change after it is followed, not lost."""
        async with await self.database.db.watch(
            PIPELINE, full_document="updateLookup", max_await_time_ms=MAX_AWAIT_MS
        ) as stream:
            token = stream.resume_token
            if token is None:
                await stream.try_next()
                token = stream.resume_token
        if token is None:
            raise PyMongoError("the change stream gave no resume token")
        return token

    async def _follow(self, token: Mapping[str, Any]) -> Mapping[str, Any]:
        """Apply the stream's changes batch by batch, saving the token after each (and, when
        idle, every LEASE_SECONDS / 4, which renews the lease); returns the last token.

        The stream is opened again from the token after each batch applied, so no stream is
        left open behind while a batch is written: SecantusDB trims its oplog under an open
        stream, which then goes on after the gap without an error (measured: a cap of 1,000
        entries, 3,000 inserts, 1,999 events, no error), where MongoDB fails it. An open
        from a token the trimming passed fails (ChangeStreamHistoryLost): a rebuild."""
        saved_at = utc_now()
        try:
            while not self.stop.is_set():
                changes, asked_at, token = await self._gather(token)
                if changes:
                    await self._apply(changes)
                await self._merge(idle=not changes)
                self._caught_up(changes[-1] if changes else None, asked_at)
                if changes or utc_now() - saved_at >= _lease_time() / 4:
                    await self._save({"token": token, "caught_up_at": self.caught_up_at})
                    saved_at = utc_now()
        except OperationFailure as exc:
            if exc.code in UNRESUMABLE_CODES:
                log.warning("search index: the change stream cannot resume; rebuilding", extra={"code": exc.code})
                raise _Rebuild(at_once=exc.code == HISTORY_LOST) from exc
            raise
        return token

    async def _gather(self, token: Mapping[str, Any]) -> tuple[list[Document], datetime | None, Mapping[str, Any]]:
        """The next batch of changes after `token` (_next_batch), when it was asked last, and
        the token after it; the stream stays open while there are none, up to LEASE_SECONDS / 4
        (then the stream is idle: count deltas are merged)."""
        started = utc_now()
        async with await self.database.db.watch(
            PIPELINE, resume_after=token, full_document="updateLookup", max_await_time_ms=MAX_AWAIT_MS
        ) as stream:
            while True:
                changes, asked_at = await self._next_batch(stream)
                token = stream.resume_token or token
                idle_for = utc_now() - started
                if changes or not stream.alive or self.stop.is_set() or idle_for >= _lease_time() / 4:
                    return changes, asked_at, token
                self._caught_up(None, asked_at)

    def _caught_up(self, last: Document | None, asked_at: datetime | None) -> None:
        """Move caught_up_at to the commit time of the last change applied (every change
        committed before it is applied too: the stream is in commit order), or to when an
        empty answer was asked for."""
        times = [self.caught_up_at, asked_at, _commit_time(last) if last is not None else None]
        self.caught_up_at = max((t for t in times if t is not None), default=None)

    async def _next_batch(self, stream: Any) -> tuple[list[Document], datetime | None]:
        """Changes until the stream has none, the batch is full, or BATCH_WAIT has passed since
        its first change (a steady trickle must not wait for a full batch); and, when the stream
        had none and its position did not move, when it was asked last: everything committed
        before that is in the batch. An empty answer alone does not say so on SecantusDB: a
        getMore reads at most 400 of the database's oplog entries, and answers empty when the
        filter drops them all, with messages further on (its resume token then moves past what
        it read); at the end of the oplog it answers empty with the token unchanged."""
        changes: list[Document] = []
        chars = 0
        started = asyncio.get_running_loop().time()
        while len(changes) < BATCH_MESSAGES and chars < BATCH_CHARS:
            if changes and asyncio.get_running_loop().time() - started > BATCH_WAIT_SECONDS:
                break
            asked_at, position = utc_now(), stream.resume_token
            change = await stream.try_next()
            if change is None:
                return changes, (asked_at if stream.resume_token == position else None)
            if change["operationType"] in ("invalidate", "drop"):
                raise _Rebuild
            if change["operationType"] == "update" and not _final_text(change):
                continue  # a reply still being written, or a message deleted since (its delete follows)
            changes.append(change)
            chars += len((change.get("fullDocument") or {}).get("content") or "")
        return changes, None

    async def _apply(self, changes: list[Document]) -> None:
        """Apply the changes in order: consecutive inserts together, consecutive deletes too; a
        reply's final text replaces what was indexed of it (its entry is removed, then added)."""
        for operation, group in _runs(changes):
            if operation != "insert":
                async with self.database.transaction_slots.hold(INDEXER_OWNER):
                    await search_index.remove_entries(self.database.db, [c["documentKey"]["_id"] for c in group])
            if operation != "delete":
                await self._add([change["fullDocument"] for change in group])

    async def _add(self, messages: list[Document]) -> int:
        """Index the messages, TERMS_PER_WRITE index terms per write at most (SecantusDB writes
        ~10,000 index entries a second: a bigger write would outlast DB_TIMEOUT_SECONDS and
        hold up requests), each write in its turn for a transaction slot."""
        db = self.database.db
        added = 0
        # Folding the words of a batch (up to BATCH_CHARS of text) is CPU work: off the event loop.
        all_entries = await asyncio.to_thread(lambda: [search_index.entry_of(message) for message in messages])
        for entries in _by_terms(all_entries, "terms"):
            async with self.database.transaction_slots.hold(INDEXER_OWNER):
                inserted = await search_index.insert_entries(db, entries)
            added += len(inserted)
            for deltas in _by_terms(search_index.count_deltas(inserted), "counts"):
                async with self.database.transaction_slots.hold(INDEXER_OWNER):
                    await search_index.add_count_deltas(db, deltas)
                self._unmerged.update((delta["user_id"], delta["bucket"]) for delta in deltas)
        self._batches += 1
        return added

    async def _merge(self, idle: bool) -> None:
        """Fold the count deltas into the counts when the stream is idle or MERGE_EVERY batches
        have been indexed since the last merge: a bucket is rewritten once for them all (a
        rewrite costs with the bucket's size, which grows with the user's vocabulary; per batch
        it made a user with 100,000 distinct words cost ~100 ms of the database's time a post),
        and search reads about that many deltas per bucket. At most MERGES_PER_TURN buckets a
        call (the lease is renewed between calls); the rest at the next. While messages come, a
        merge goes on by BUCKETS_PER_MERGE buckets between two batches: all of it at once held
        the new messages back ~1.2 s every MERGE_EVERY batches (post-to-searchable p99 2.1 s
        under the benchmark's four writers)."""
        if not self._merging and (idle or self._batches >= MERGE_EVERY):
            self._merging, self._batches = set(self._unmerged), 0
        if not self._merging:
            return
        db = self.database.db
        turn: dict[ObjectId, list[int]] = {}
        for user_id, bucket in sorted(self._merging)[: MERGES_PER_TURN if idle else BUCKETS_PER_MERGE]:
            turn.setdefault(user_id, []).append(bucket)
        users = await existing_user_ids(db, list(turn))
        for user_id, buckets in turn.items():
            if user_id not in users:  # deleted (their messages indexed just before): not counted
                await search_index.forget_user_counts(db, user_id)
            else:
                for start in range(0, len(buckets), BUCKETS_PER_MERGE):
                    await self._merge_buckets(user_id, buckets[start : start + BUCKETS_PER_MERGE])
            merged = {(user_id, bucket) for bucket in buckets}
            self._unmerged -= merged
            self._merging -= merged

    async def _merge_buckets(self, user_id: ObjectId, buckets: list[int]) -> None:
        db = self.database.db
        while buckets:
            try:
                await self._in_transaction(functools.partial(search_index.merge_count_deltas, db, user_id, buckets))
                return
            except search_index.BucketFull as full:
                log.warning("search index: a bucket of term counts is full; it stops counting")
                await search_index.forget_count_deltas(db, user_id, full.bucket)
                buckets = [bucket for bucket in buckets if bucket != full.bucket]

    async def _in_transaction(self, work: Callable[[AsyncClientSession], Awaitable[None]]) -> None:
        """`work` in a transaction (one commit for its writes), in its turn for a slot."""
        slot, client = self.database.transaction_slots.hold(INDEXER_OWNER), self.database.client
        async with slot, client.start_session() as session:
            with pymongo.timeout(client.options.timeout):
                await session.with_transaction(work)


def _final_text(change: Document) -> bool:
    """An update that leaves a message's text final: a reply no longer streaming."""
    document = change.get("fullDocument")
    return document is not None and document.get("status") != STREAMING


def _by_terms(documents: list[Document], field: str) -> list[list[Document]]:
    """The documents in runs of at most TERMS_PER_WRITE terms in `field` (one alone may hold
    more)."""
    runs: list[list[Document]] = [[]]
    terms = 0
    for document in documents:
        if runs[-1] and terms + len(document[field]) > TERMS_PER_WRITE:
            runs.append([])
            terms = 0
        runs[-1].append(document)
        terms += len(document[field])
    return runs


def _commit_time(change: Document) -> datetime | None:
    """The change's commit time: its wallTime (MongoDB 6+), else its clusterTime (seconds)."""
    wall = change.get("wallTime")
    if isinstance(wall, datetime):
        return wall
    cluster = change.get("clusterTime")
    return cluster.as_datetime() if isinstance(cluster, Timestamp) else None


def _runs(changes: list[Document]) -> list[tuple[str, list[Document]]]:
    runs: list[tuple[str, list[Document]]] = []
    for change in changes:
        operation = change["operationType"]
        if runs and runs[-1][0] == operation:
            runs[-1][1].append(change)
        else:
            runs.append((operation, [change]))
    return runs


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _lease_time() -> timedelta:
    return timedelta(seconds=LEASE_SECONDS)


def _next_id(oid: ObjectId) -> ObjectId:
    return ObjectId((int.from_bytes(oid.binary, "big") + 1).to_bytes(12, "big"))


def _previous_id(oid: ObjectId) -> ObjectId:
    return ObjectId((int.from_bytes(oid.binary, "big") - 1).to_bytes(12, "big"))


async def _oldest_time(database: Database) -> datetime:
    document = await database.db[MESSAGES].find_one({}, {"_id": 1}, sort=[("_id", 1)])
    return utc_now() if document is None else document["_id"].generation_time


@contextlib.asynccontextmanager
async def index_behind_writes(database: Database) -> AsyncIterator[SearchIndexer]:
    """Run the indexer for the lifetime of the block (stopped between batches at its end)."""
    indexer = SearchIndexer(database)
    if not indexer.available:
        log.warning(NOT_AVAILABLE)
        yield indexer
        return
    task = asyncio.create_task(indexer.run(), name="search-indexer")
    try:
        yield indexer
    finally:
        indexer.stop.set()  # stopped between commands (see background.stop_within)
        await stop_within(task, STOP_TIMEOUT_SECONDS)
