"""The MongoDB client the app owns for its lifetime, the indexes every query relies on, and
the request dependency that hands the database to routers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import pymongo
from fastapi import Depends, Request
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from app.core.background import stop_within
from app.core.config import Settings
from app.core.locks import KeyedLocks, Slots

log = logging.getLogger(__name__)

Document = dict[str, Any]
CLOSE_TIMEOUT_SECONDS = 5.0
END_SESSIONS_TIMEOUT_SECONDS = 0.5

USERS = "users"
SESSIONS = "chat_sessions"
MESSAGES = "messages"
SESSION_TITLES = "session_titles"
SESSION_SOURCES = "session_sources"
MESSAGE_SOURCES = "message_sources"
SESSION_DELETIONS = "session_deletions"
REFRESH_TOKENS = "refresh_tokens"
REFRESH_FAMILIES = "refresh_families"
REVOCATIONS = "revocations"
API_KEYS = "api_keys"
THROTTLES = "throttles"
IDEMPOTENCY_KEYS = "idempotency_keys"
MIGRATIONS = "migrations"
AGENTS = "agents"
GENERATIONS = "generations"
MESSAGE_TERMS = "search_message_terms"
TERM_COUNTS = "search_term_counts"
TERM_COUNT_DELTAS = "search_term_count_deltas"
SEARCH_INDEXER = "search_indexer"


def time_range(since: datetime | None, until: datetime | None, until_inclusive: bool = False) -> Document:
    """The operators of a time range from `since` (inclusive) to `until`; None leaves that side
    open. The lower bound is `$gt` the millisecond before (BSON times are milliseconds):
    SecantusDB 0.7.0b3 drops the documents exactly at a `$gte` bound on an index with a
    descending time followed by a descending `_id` (as the session list and search read)."""
    bounds = (("$gt", since and since - timedelta(milliseconds=1)), ("$lte" if until_inclusive else "$lt", until))
    return {op: bound for op, bound in bounds if bound is not None}


def _expires(field: str = "expires_at") -> IndexModel:
    """A TTL index: the server deletes a document once its `field` time has passed."""
    return IndexModel([(field, ASCENDING)], expireAfterSeconds=0, name=f"{field}_ttl")


INDEXES: dict[str, list[IndexModel]] = {
    USERS: [
        IndexModel([("username_key", ASCENDING)], unique=True, name="username_key_unique"),
        IndexModel([("created_at", ASCENDING)], name="created_at"),
        IndexModel([("last_login_at", ASCENDING)], name="last_login_at"),
    ],
    SESSIONS: [
        IndexModel(
            [("user_id", ASCENDING), ("updated_at", DESCENDING), ("_id", DESCENDING)],
            name="user_recent_activity",
        ),
        IndexModel(
            [("user_id", ASCENDING), ("platform", ASCENDING), ("updated_at", DESCENDING), ("_id", DESCENDING)],
            name="user_platform_recent_activity",
        ),
        # Uniqueness of a user's session names: sessions without a name are left out. SecantusDB
        # does not plan queries on a partial index, so look-ups by name use the next one.
        IndexModel(
            [("user_id", ASCENDING), ("name", ASCENDING)],
            unique=True,
            partialFilterExpression={"name": {"$type": "string"}},
            name="user_name_unique",
        ),
        IndexModel([("user_id", ASCENDING), ("name", ASCENDING), ("_id", ASCENDING)], name="user_name"),
        IndexModel([("updated_at", ASCENDING)], name="updated_at"),
    ],
    # What search and imports look sessions up by, kept off the session document, which every
    # post updates: posts then write no index entries for them (on SecantusDB each index write
    # in a post's transaction slows concurrent posts; see README, Performance). Written on
    # create, rename and delete only.
    SESSION_TITLES: [
        IndexModel([("session_id", ASCENDING)], unique=True, name="session_id_unique"),
        # Search by title (app.chat.search): a term, then a time range, newest first.
        IndexModel(
            [("user_id", ASCENDING), ("terms", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
            name="user_terms_recent",
        ),
    ],
    # Imports find a session, and a session's messages, again by their source ids
    # (app.chat.history): unique per user, and per session. Kept off the messages too, so
    # posts (which have none) pay for no index of them.
    SESSION_SOURCES: [
        IndexModel([("user_id", ASCENDING), ("source_id", ASCENDING)], unique=True, name="user_source_id_unique"),
        IndexModel([("session_id", ASCENDING)], name="session_id"),
    ],
    MESSAGE_SOURCES: [
        IndexModel([("session_id", ASCENDING), ("source_id", ASCENDING)], unique=True, name="session_source_id_unique")
    ],
    # A deleted session's record, inserted in the delete's transaction: its change-stream
    # event carries the session and its owner (a delete event carries only the `_id`, and a
    # look-up after the delete finds nothing). Needed only until the streams have read it.
    SESSION_DELETIONS: [_expires()],
    MESSAGES: [
        IndexModel([("session_id", ASCENDING), ("seq", ASCENDING)], unique=True, name="session_seq_unique"),
    ],
    # The search index of messages, kept off the messages and written behind them by
    # app.chat.search_indexer (one document per message, its `_id` the message's): a term,
    # then a time range (or the exact times of candidates), newest first. One index only:
    # each term of a message is an entry of it, ~0.1 ms to write on SecantusDB (a search in
    # one session reads the user's entries and keeps the session's).
    MESSAGE_TERMS: [
        IndexModel(
            [("user_id", ASCENDING), ("terms", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
            name="user_terms_recent",
        ),
    ],
    # How many of a user's messages hold each term, in buckets of terms (an estimate: kept by
    # the indexer, not lowered by deletes): search reads the index by the query's rarest term.
    TERM_COUNTS: [IndexModel([("user_id", ASCENDING), ("bucket", ASCENDING)], unique=True, name="user_bucket_unique")],
    # What the indexer counted since it last merged a bucket into its counts (one document per
    # indexed batch, user and bucket): a bucket of a large vocabulary is rewritten once per
    # merge, not once per batch. Search adds them to the counts.
    TERM_COUNT_DELTAS: [IndexModel([("user_id", ASCENDING), ("bucket", ASCENDING)], name="user_bucket")],
    # The indexer's lease and durable position (one document, by name).
    SEARCH_INDEXER: [
        IndexModel([("name", ASCENDING)], unique=True, name="name_unique"),
        # The lease's compare-and-set filter, {name, holder}: SecantusDB scans for an equality
        # on two fields when only one of them is indexed.
        IndexModel([("name", ASCENDING), ("holder", ASCENDING)], name="name_holder"),
    ],
    REFRESH_TOKENS: [
        IndexModel([("token_hash", ASCENDING)], unique=True, name="token_hash_unique"),
        IndexModel([("family_id", ASCENDING)], name="family_id"),
        IndexModel([("user_id", ASCENDING), ("family_id", ASCENDING)], name="user_family"),
        _expires(),
    ],
    REFRESH_FAMILIES: [
        IndexModel([("family_id", ASCENDING)], unique=True, name="family_id_unique"),
        IndexModel([("user_id", ASCENDING)], name="user_id"),
        _expires(),
    ],
    REVOCATIONS: [IndexModel([("created_at", ASCENDING)], name="created_at"), _expires()],
    API_KEYS: [
        IndexModel([("key_hash", ASCENDING)], unique=True, name="key_hash_unique"),
        IndexModel([("user_id", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)], name="user_created_id"),
        IndexModel([("slot", ASCENDING)], unique=True, sparse=True, name="slot_unique"),
        _expires(),
    ],
    THROTTLES: [IndexModel([("key", ASCENDING)], unique=True, name="key_unique"), _expires()],
    IDEMPOTENCY_KEYS: [
        IndexModel([("user_id", ASCENDING), ("key", ASCENDING)], unique=True, name="user_key_unique"),
        _expires(),
    ],
    MIGRATIONS: [IndexModel([("name", ASCENDING)], unique=True, name="name_unique")],
    AGENTS: [IndexModel([("name", ASCENDING)], unique=True, name="name_unique")],
    # Replies being generated (app.assistant): one per session and at most MODEL_MAX_PER_USER
    # per user (numbered slots), both by unique index; leases found by expiry.
    GENERATIONS: [
        IndexModel([("session_id", ASCENDING)], unique=True, name="session_id_unique"),
        IndexModel([("user_id", ASCENDING), ("slot", ASCENDING)], unique=True, name="user_slot_unique"),
        IndexModel([("message_id", ASCENDING)], unique=True, name="message_id_unique"),
        IndexModel([("lease_until", ASCENDING)], name="lease_until"),
    ],
}


LocalPublisher = Callable[[str, str, Document, Hashable], None]


@dataclass
class Database:
    client: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]
    supports_transactions: bool
    transaction_slots: Slots
    transaction_locks: KeyedLocks = field(default_factory=KeyedLocks)
    # Set only where there are no change streams (a standalone server): services announce
    # their writes here (collection, operation, full document, owner) for this process's
    # event streams.
    publish_local: LocalPublisher | None = None

    def announce(self, collection: str, operation: str, documents: list[Document], owner: Hashable) -> None:
        if self.publish_local is not None:
            for document in documents:
                self.publish_local(collection, operation, document, owner)


def create_client(
    uri: str, settings: Settings, event_listeners: Sequence[monitoring.CommandListener] = ()
) -> AsyncMongoClient[Document]:
    """A client whose acknowledged writes are journaled (and majority-committed on a replica
    set) and whose every wait is bounded, so a dead database means a fast 503, not a hang.

    timeoutMS bounds each operation as a whole: server selection, waiting for a pooled
    connection, retries and the reply. With it set the driver ignores serverSelectionTimeoutMS
    and retries reads until timeoutMS runs out, so it is DB_TIMEOUT_SECONDS itself (a larger
    value made every request wait that long when the database is down).
    """
    timeout_ms = int(settings.db_timeout_seconds * 1000)
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        w="majority",
        journal=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        timeoutMS=timeout_ms,
        appname="chat-server",
        event_listeners=list(event_listeners),
    )


async def open_database(
    uri: str, settings: Settings, event_listeners: Sequence[monitoring.CommandListener] = ()
) -> Database:
    client = create_client(uri, settings, event_listeners)
    hello = await client.admin.command("hello")
    supports_transactions = "setName" in hello or hello.get("msg") == "isdbgrid"
    if not supports_transactions:
        log.warning(
            "the database is a standalone server without transactions: a message and its "
            "session's counters are written separately, so counters can drift after a crash; "
            "run MongoDB as a replica set (a single node is enough)"
        )
    slots = Slots(settings.db_max_transactions)
    database = Database(client, client[settings.mongodb_db], supports_transactions, slots)
    await ensure_indexes(database.db)
    return database


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    """Create every index a request relies on; idempotent, run at every start."""
    for collection, models in INDEXES.items():
        await db[collection].create_indexes(models)


async def close_client(client: AsyncMongoClient[Document]) -> None:
    """Close with time limits: `close()` can hang when the database is already gone, and its
    best-effort endSessions would otherwise wait the full timeoutMS for a dead database (the
    server expires the sessions itself), which with requests draining first made a shutdown
    with the database down take over 5 s."""
    with pymongo.timeout(END_SESSIONS_TIMEOUT_SECONDS):  # the task takes this context along
        closing = asyncio.create_task(client.close(), name="close-database-client")
    await stop_within(closing, CLOSE_TIMEOUT_SECONDS)


def redact_uri(uri: str) -> str:
    """The URI with any password removed, for logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


async def _database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(_database)]
