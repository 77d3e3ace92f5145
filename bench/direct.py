"""The baseline: the database operations behind send_message and list_messages issued
directly through AsyncMongoClient, same database, same concurrency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession

from app.chat import repository
from app.chat.schemas import MessageCreate
from app.chat.service import message_document
from app.core.config import DEFAULT_MAX_TRANSACTIONS
from app.core.db import Database
from app.core.locks import Slots
from app.core.transactions import run_in_transaction
from bench.load import summarize

BENCH_MESSAGE = MessageCreate(content="benchmark message", role="user")
Operation = Callable[[ObjectId, ObjectId], Awaitable[Any]]


def operations(client: AsyncMongoClient[dict[str, Any]], db_name: str) -> dict[str, Operation]:
    """The API's own repository calls, with its transaction runner, minus HTTP and the app."""
    # The same bound on concurrent transactions as the server's default, so api/raw compares like with like.
    database = Database(client, client[db_name], True, Slots(DEFAULT_MAX_TRANSACTIONS))
    db = database.db

    async def send_message(session_id: ObjectId, user_id: ObjectId) -> None:
        async def body(session: AsyncClientSession | None) -> list[dict[str, Any]]:
            now = datetime.now(UTC)
            seq = await repository.claim_seqs(db, session_id, user_id, 1, now, session)
            assert seq is not None
            document = message_document(session_id, user_id, BENCH_MESSAGE, seq, now)
            return await repository.insert_messages(db, [document], session)

        await run_in_transaction(database, body, serialize_on=(user_id, session_id), owner=user_id)

    async def list_messages(session_id: ObjectId, user_id: ObjectId) -> None:
        session = await repository.find_owned_session(db, session_id, user_id)
        assert session is not None
        newest = int(session["message_count"])
        await repository.messages_in_seq_range(db, session_id, max(1, newest - 49), newest)

    return {"send_message": send_message, "list_messages": list_messages}


async def measure(
    uri: str, db_name: str, name: str, targets: list[tuple[ObjectId, ObjectId]], concurrency: int, seconds: float
) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True, w="majority", journal=True)
    operation = operations(client, db_name)[name]
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        session_id, user_id = targets[index % len(targets)]
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await operation(session_id, user_id)
            latencies.append(time.perf_counter() - started)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return summarize(latencies, 0, time.perf_counter() - started)
    finally:
        await client.close()
