"""One place that opens transactions: the service passes the session down to repositories."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

import pymongo
from pymongo.asynchronous.client_session import AsyncClientSession

from app.core.db import Database
from app.core.errors import DatabaseUnavailable
from app.core.locks import LockTimeout

T = TypeVar("T")
BUSY = "Too many writes to this at once, or the database is slow; try again shortly"
TransactionBody = Callable[[AsyncClientSession | None], Awaitable[T]]


async def run_in_transaction(
    database: Database,
    body: TransactionBody[T],
    serialize_on: Hashable,
    owner: Hashable,
    timeout: float | None = None,
    wait: float | None = None,
) -> T:
    """Run `body` in a transaction, retried by the driver on transient errors (WriteConflict
    between concurrent writers, a primary step-down) and on unknown commit results.

    Transactions with the same `serialize_on` key (the document they all update) run one at
    a time within this process: they would otherwise conflict on that document and retry each
    other, which makes a burst of N writers cost O(N^2) attempts and starves some of them.
    Conflicts with other server processes are still retried by the driver. The wait for a
    turn is bounded like the transaction itself: when the database is down, every holder takes
    the full timeout to fail, and an unbounded queue would turn that into minutes.

    On a standalone server without transactions `body` runs once, with no session.

    The driver retries for up to 120 s unless a `pymongo.timeout` block bounds it (the client's
    timeoutMS bounds each command, not with_transaction), so the client's per-operation
    timeout bounds the whole transaction: a dead database is a 503, not a two-minute wait.
    `timeout` (seconds) gives a transaction whose work grows with the data (clearing a long
    session) a longer bound than that.

    At most DB_MAX_TRANSACTIONS run at once in this process (see config.DEFAULT_MAX_TRANSACTIONS);
    the rest wait for a slot, `owner`s (users) taking turns (locks.Slots: one user's burst of
    writes queues behind itself, not in front of other users'), as long as for their turn:
    `timeout`, or `wait` when given (a write that is part of a longer operation, which its
    caller expects to wait for: asking for a reply queues behind a burst rather than failing;
    its own transaction stays bounded by `timeout`).
    """
    timeout = timeout or database.client.options.timeout
    wait = wait or timeout
    try:
        async with database.transaction_locks.hold(serialize_on, wait), database.transaction_slots.hold(owner, wait):
            if not database.supports_transactions:
                with pymongo.timeout(timeout):
                    return await body(None)
            async with database.client.start_session() as session:
                with pymongo.timeout(timeout):
                    return await session.with_transaction(body)
    except LockTimeout as exc:
        raise DatabaseUnavailable(BUSY) from exc
