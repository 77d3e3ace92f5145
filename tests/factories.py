"""Users, sessions and messages made through the public API, as a client would."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from bson import ObjectId
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import USERS, Document

DEFAULT_PASSWORD = "correct-horse-battery"
_counter = itertools.count()


@dataclass
class TestUser:
    __test__ = False  # not a pytest test class

    id: str
    username: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def unique_username(prefix: str = "user") -> str:
    return f"{prefix}{next(_counter)}_{uuid.uuid4().hex[:6]}"


async def login_tokens(client: AsyncClient, username: str, password: str) -> dict[str, Any]:
    """The whole login answer: access_token, refresh_token, expires_in, refresh_expires_in."""
    response = await client.post("/auths/login", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def login(client: AsyncClient, username: str, password: str) -> str:
    token: str = (await login_tokens(client, username, password))["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def make_user(client: AsyncClient, username: str | None = None, password: str = DEFAULT_PASSWORD) -> TestUser:
    username = username or unique_username()
    response = await client.post("/auths/register", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    return TestUser(response.json()["_id"], username, password, await login(client, username, password))


def register_over_http(base_url: str, username: str, password: str = DEFAULT_PASSWORD) -> dict[str, str]:
    """Register and log in against a real server process; the Authorization header."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        assert http.post("/auths/register", json={"username": username, "password": password}).status_code == 201
        tokens = http.post("/auths/login", data={"username": username, "password": password}).json()
    return bearer(tokens["access_token"])


async def make_admin(client: AsyncClient, db: AsyncDatabase[Document], username: str | None = None) -> TestUser:
    """A user promoted to admin directly in the database (as `chat-admin create-user --admin`
    would make one); admin rights are read from the database on each admin request."""
    user = await make_user(client, username or unique_username("admin"))
    await db[USERS].update_one({"_id": ObjectId(user.id)}, {"$set": {"role": "admin"}})
    return user


async def make_session(client: AsyncClient, user: TestUser, title: str = "A chat") -> dict[str, Any]:
    response = await client.post("/chat/sessions", json={"title": title}, headers=user.headers)
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


async def post_message(
    client: AsyncClient, user: TestUser, session_id: str, content: str = "hello", role: str = "user"
) -> dict[str, Any]:
    response = await client.post(
        f"/chat/sessions/{session_id}/messages", json={"content": content, "role": role}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    message: dict[str, Any] = response.json()
    return message


async def all_pages(
    client: AsyncClient, user: TestUser, path: str, limit: int = 50, **filters: Any
) -> list[dict[str, Any]]:
    """Every item of a paged list, following next_cursor to the end, in the order served."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit, **filters}
    while True:
        response = await client.get(path, params=params, headers=user.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


SEARCH_INDEX_WAIT_SECONDS = 60.0


async def wait_for_search_index(client: AsyncClient, timeout: float = SEARCH_INDEX_WAIT_SECONDS) -> None:
    """Wait until the search index holds every message stored before this call: until
    /readyz reports that the indexer caught up after it (search is built behind the writes),
    twice over: a loaded machine can stall the indexer past its lease between two reports."""
    for _ in range(2):
        await _wait_for_index(client, datetime.now(UTC), timeout)


async def _wait_for_index(client: AsyncClient, since: datetime, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get("/readyz")
        caught_up_at = response.json().get("search_index", {}).get("caught_up_at")
        if caught_up_at is not None and datetime.fromisoformat(caught_up_at) >= since:
            return
        assert asyncio.get_running_loop().time() < deadline, f"search index not caught up: {response.text}"
        await asyncio.sleep(0.02)


def wait_for_search_index_over_http(base_url: str, timeout: float = SEARCH_INDEX_WAIT_SECONDS) -> None:
    """wait_for_search_index against a server process (twice over, likewise)."""
    deadline = time.monotonic() + timeout
    for _ in range(2):
        since = datetime.now(UTC)
        while True:
            body = httpx.get(f"{base_url}/readyz", timeout=5).json()
            caught_up_at = body.get("search_index", {}).get("caught_up_at")
            if caught_up_at is not None and datetime.fromisoformat(caught_up_at) >= since:
                break
            assert time.monotonic() < deadline, f"search index not caught up: {body}"
            time.sleep(0.05)
