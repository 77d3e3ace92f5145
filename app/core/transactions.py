"""One place that opens transactions: the service passes the session down to repositories."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

from app.core.db import Database

T = TypeVar("T")
TransactionBody = Callable[[AsyncClientSession | None], Awaitable[T]]


async def run_in_transaction(database: Database, body: TransactionBody[T]) -> T:
    """Run `body` in a transaction, retried by the driver on transient errors (WriteConflict
    between concurrent writers, a primary step-down) and on unknown commit results.

    On a standalone server without transactions `body` runs once, with no session.
    """
    if not database.supports_transactions:
        return await body(None)
    async with database.client.start_session() as session:
        return await session.with_transaction(body)
