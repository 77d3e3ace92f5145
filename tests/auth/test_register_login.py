from __future__ import annotations

import statistics
import time

import pytest
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import USERS, Document
from tests.factories import DEFAULT_PASSWORD, make_user, unique_username


async def test_register_returns_the_user_without_the_hash(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    response = await client.post("/auths/register", json={"username": "Alice.B-1", "password": "alicepass123"})
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "Alice.B-1"
    assert "password" not in response.text and "hash" not in response.text
    stored = await db[USERS].find_one({"username": "Alice.B-1"})
    assert stored is not None and stored["password_hash"].startswith("$argon2id$")


async def test_username_is_unique_case_insensitively(client: AsyncClient) -> None:
    await make_user(client, "Bob")
    for name in ("Bob", "bob", "BOB"):
        response = await client.post("/auths/register", json={"username": name, "password": "whatever123"})
        assert response.status_code == 409 and response.json() == {"detail": "Username is already taken"}


async def test_register_validation(client: AsyncClient) -> None:
    bad = [
        {"username": "ab", "password": "long-enough"},
        {"username": "x" * 33, "password": "long-enough"},
        {"username": "has space", "password": "long-enough"},
        {"username": "émile", "password": "long-enough"},
        {"username": "carol", "password": "short"},
        {"username": "carol", "password": "p" * 129},
        {"username": "carol", "password": "long-enough", "role": "admin"},
        {"username": "carol", "password": "long-enough", "_id": ""},
        {"username": "carol"},
    ]
    for payload in bad:
        response = await client.post("/auths/register", json=payload)
        assert response.status_code == 422, payload
        assert isinstance(response.json()["detail"], list)


async def test_login_and_me(client: AsyncClient) -> None:
    user = await make_user(client)
    response = await client.post("/auths/login", data={"username": user.username.upper(), "password": user.password})
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "bearer" and token["expires_in"] > 0
    me = await client.get("/auths/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200 and me.json()["username"] == user.username and me.json()["_id"] == user.id


@pytest.mark.password_cost
async def test_unknown_user_and_wrong_password_look_the_same(client: AsyncClient) -> None:
    user = await make_user(client)
    attempts = {"wrong password": user.username, "unknown user": unique_username("ghost")}
    timings: dict[str, list[float]] = {}
    for label, username in attempts.items():
        for _ in range(3):
            started = time.perf_counter()
            response = await client.post("/auths/login", data={"username": username, "password": "not-it-123"})
            timings.setdefault(label, []).append(time.perf_counter() - started)
            assert response.status_code == 401
            assert response.json() == {"detail": "Incorrect username or password"}
            assert response.headers["www-authenticate"] == "Bearer"
    known, unknown = (statistics.median(timings[k]) for k in attempts)
    # Both verify one Argon2 hash; an unknown user that skipped hashing would answer many times faster.
    assert unknown > known / 3


async def test_login_form_validation(client: AsyncClient) -> None:
    assert (await client.post("/auths/login", data={"username": "x"})).status_code == 422
    assert (await client.post("/auths/login", json={"username": "x", "password": DEFAULT_PASSWORD})).status_code == 422


async def test_protected_endpoints_need_a_valid_token(client: AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"}):
        for method, path in (("GET", "/auths/me"), ("GET", "/chat/sessions"), ("POST", "/chat/sessions")):
            response = await client.request(method, path, headers=headers, json={"title": "t"})
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "detail" in response.json()
