from __future__ import annotations

import asyncio
import time

import pytest
from fastapi import FastAPI
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from app.core.db import Database
from app.core.errors import DatabaseUnavailable
from app.core.transactions import run_in_transaction

WRITERS = 20


async def test_conflicting_transactions_are_retried_until_each_commits_once(app: FastAPI) -> None:
    """Transactions that update one document conflict (WriteConflict); as from several server
    processes, none is serialized here, so the driver's with_transaction must retry them."""
    database: Database = app.state.database
    counters = database.db["test_counters"]
    counter_id = (await counters.insert_one({"n": 0})).inserted_id
    log = database.db["test_log"]

    async def bump(session: AsyncClientSession | None) -> int:
        document = await counters.find_one_and_update(
            {"_id": counter_id}, {"$inc": {"n": 1}}, return_document=ReturnDocument.AFTER, session=session
        )
        assert document is not None
        await log.insert_one({"n": document["n"]}, session=session)
        return int(document["n"])

    results = await asyncio.gather(
        *(run_in_transaction(database, bump, serialize_on=object(), owner="test") for _ in range(WRITERS))
    )
    assert sorted(results) == list(range(1, WRITERS + 1))
    assert sorted([d["n"] async for d in log.find({})]) == list(range(1, WRITERS + 1))
    assert len(database.transaction_locks) == 0


async def test_transactions_on_one_key_take_turns(app: FastAPI) -> None:
    database: Database = app.state.database
    running = 0
    overlapped = False

    async def body(_: AsyncClientSession | None) -> None:
        nonlocal running, overlapped
        running += 1
        overlapped |= running > 1
        await asyncio.sleep(0.01)
        running -= 1

    await asyncio.gather(*(run_in_transaction(database, body, serialize_on="same", owner="test") for _ in range(5)))
    assert not overlapped


async def test_the_wait_for_a_turn_is_bounded_like_the_transaction(app: FastAPI) -> None:
    """With the database down, each transaction on a session takes the full timeout to fail; a
    request queued behind them must answer 503 in about that time too, not after the queue."""
    database: Database = app.state.database
    ran = False

    async def body(_: AsyncClientSession | None) -> None:
        nonlocal ran
        ran = True

    started = time.monotonic()
    async with database.transaction_locks.hold("busy session"):
        with pytest.raises(DatabaseUnavailable):
            await run_in_transaction(database, body, serialize_on="busy session", owner="test")
    assert not ran
    assert time.monotonic() - started < database.client.options.timeout + 1
    assert len(database.transaction_locks) == 0
