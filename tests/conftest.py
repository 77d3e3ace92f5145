"""One embedded database for the whole run (or MONGODB_URI when set); a fresh database name per
test, dropped after; the app run inside its lifespan, spoken to over ASGI."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pymongo
import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher
from pymongo.asynchronous.database import AsyncDatabase

from app.core import security
from app.core.config import Settings
from app.core.db import Document
from app.core.embedded import EmbeddedDatabase
from app.main import create_app

DROP_TIMEOUT_SECONDS = 120.0
TEST_JWT_SECRET = "test-only-secret-" + "0123456789abcdef" * 3
# Argon2id at its lowest cost: the real cost (~0.2 s a hash on a slow machine) took a third of
# the suite's in-process time. Tests about what hashing costs are marked `password_cost`; the
# server processes, the CLI and the browser tests hash at the real cost.
QUICK_PASSWORD_HASH = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1), BcryptHasher()))
QUICK_DUMMY_HASH = QUICK_PASSWORD_HASH.hash("dummy password for unknown users")


@pytest.fixture(autouse=True)
def quick_password_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("password_cost") is None:
        monkeypatch.setattr(security, "password_hash", QUICK_PASSWORD_HASH)
        monkeypatch.setattr(security, "DUMMY_HASH", QUICK_DUMMY_HASH)


@pytest_asyncio.fixture(scope="session")
async def mongodb_uri(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    external = os.environ.get("MONGODB_URI")
    if external:
        yield external
        return
    database = EmbeddedDatabase(tmp_path_factory.mktemp("embedded-db"))
    yield await database.start()
    await database.stop()


@pytest.fixture
def settings(mongodb_uri: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        mongodb_uri=mongodb_uri,
        mongodb_db=f"test_{uuid.uuid4().hex[:16]}",
        jwt_secret=TEST_JWT_SECRET,
        data_dir=tmp_path / "data",
        max_body_bytes=64 * 1024,
        register_max_per_ip=10_000,  # tests register many users from one address
        revocation_poll_seconds=0.2,
    )


@pytest_asyncio.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
        await drop_test_database(application.state.database.db)


async def drop_test_database(db: AsyncDatabase[Document]) -> None:
    """Drop the test's database, emptying its collections first: SecantusDB drops an index
    entry by entry, ~3 ms each (a few hundred indexed messages' search terms took seconds),
    while deleting the documents first removes them in bulk (with time for a big one)."""
    with pymongo.timeout(DROP_TIMEOUT_SECONDS):
        for name in await db.list_collection_names():
            await db[name].delete_many({})
        await db.client.drop_database(db.name)


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as http:
        yield http


@pytest.fixture
def db(app: FastAPI) -> AsyncDatabase[Document]:
    database: AsyncDatabase[Document] = app.state.database.db
    return database


StartApp = Callable[..., Awaitable[AsyncClient]]


@pytest_asyncio.fixture
async def start_app(app: FastAPI, settings: Settings) -> AsyncIterator[StartApp]:
    """Start another app instance on the test's database, with settings overridden, e.g.
    `await start_app(login_max_failures=3)`: a second server, or one with small limits."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: object) -> AsyncClient:
            application = create_app(settings.model_copy(update=overrides))
            await stack.enter_async_context(application.router.lifespan_context(application))
            transport = ASGITransport(app=application)
            return await stack.enter_async_context(AsyncClient(transport=transport, base_url="http://testserver"))

        yield start


def client_from(client: AsyncClient, address: str) -> AsyncClient:
    """Another client of the same app, seen as coming from `address` (throttles count per
    address); use it as `async with client_from(server, "10.0.0.1") as other: ...`."""
    transport = client._transport
    assert isinstance(transport, ASGITransport)
    return AsyncClient(
        transport=ASGITransport(app=transport.app, client=(address, 40000)), base_url=str(client.base_url)
    )
