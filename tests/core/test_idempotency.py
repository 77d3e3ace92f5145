"""Idempotency-Key: a retried create is answered from the first response, never done twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.chat import repository
from app.core import idempotency
from app.core.db import IDEMPOTENCY_KEYS, MESSAGES, SESSIONS, Document
from tests.factories import TestUser, make_session, make_user


def keyed(user: TestUser, key: str) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key}


async def message_count(db: AsyncDatabase[Document], session_id: str) -> int:
    return await db[MESSAGES].count_documents({"session_id": ObjectId(session_id)})


async def test_a_retry_replays_the_first_response(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}/messages"
    first = await client.post(path, json={"content": "once"}, headers=keyed(user, "k-1"))
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    retry = await client.post(path, json={"content": "once"}, headers=keyed(user, "k-1"))
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.content == first.content
    assert await message_count(db, session["_id"]) == 1

    batch = {"messages": [{"content": "a"}, {"role": "assistant", "content": "b"}]}
    replies = [await client.post(path + "/batch", json=batch, headers=keyed(user, "k-2")) for _ in range(3)]
    assert [r.status_code for r in replies] == [201] * 3 and len({r.content for r in replies}) == 1
    assert await message_count(db, session["_id"]) == 3

    created = [await client.post("/chat/sessions", json={"title": "t"}, headers=keyed(user, "k-3")) for _ in range(3)]
    assert [r.status_code for r in created] == [201] * 3 and len({r.json()["_id"] for r in created}) == 1
    assert await db[SESSIONS].count_documents({"title": "t"}) == 1

    named = [await client.post("/chat/sessions", json={"name": "n"}, headers=keyed(user, "k-4")) for _ in range(2)]
    assert [r.status_code for r in named] == [201, 201] and named[1].headers["Idempotent-Replayed"] == "true"
    other_key = await client.post("/chat/sessions", json={"name": "n"}, headers=keyed(user, "k-5"))
    assert other_key.status_code == 200 and other_key.json()["_id"] == named[0].json()["_id"]


async def test_the_same_key_for_another_request_is_422(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}/messages"
    assert (await client.post(path, json={"content": "one"}, headers=keyed(user, "k"))).status_code == 201
    for url, body in ((path, {"content": "two"}), (path + "/batch", {"messages": [{"content": "one"}]})):
        response = await client.post(url, json=body, headers=keyed(user, "k"))
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await message_count(db, session["_id"]) == 1

    other = await make_user(client)  # keys are per user
    theirs = await make_session(client, other)
    response = await client.post(
        f"/chat/sessions/{theirs['_id']}/messages", json={"content": "x"}, headers=keyed(other, "k")
    )
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers


async def test_bad_keys_are_400(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}/messages"
    for key in ("", "x" * 256, "tab\there", "caf\xe9".encode("latin-1"), "\x7f"):
        response = await client.post(path, json={"content": "x"}, headers={**user.headers, "Idempotency-Key": key})
        assert response.status_code == 400, key
        assert "x" * 100 not in response.text
    assert (await client.post(path, json={"content": "x"}, headers=keyed(user, "~" * 255))).status_code == 201


async def test_refused_requests_do_not_keep_the_key(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    """A validation failure or a 404 stores nothing: a corrected retry may use the same key."""
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}/messages"
    assert (await client.post(path, json={"content": " "}, headers=keyed(user, "k"))).status_code == 422
    assert (await client.post(path, json={"content": "fixed"}, headers=keyed(user, "k"))).status_code == 201

    missing = f"/chat/sessions/{ObjectId()}/messages"
    assert (await client.post(missing, json={"content": "x"}, headers=keyed(user, "k2"))).status_code == 404
    assert (await client.post(path, json={"content": "x"}, headers=keyed(user, "k2"))).status_code == 201
    assert await db[IDEMPOTENCY_KEYS].count_documents({"status_code": None}) == 0


@pytest.fixture
async def paused_writes(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[asyncio.Event]:
    """Message writes wait for the event to be set: a request stays in flight on demand."""
    release = asyncio.Event()
    claim = repository.claim_seqs

    async def paused(*args: Any) -> int | None:
        await release.wait()
        return await claim(*args)

    monkeypatch.setattr(repository, "claim_seqs", paused)
    yield release
    release.set()


async def test_a_retry_while_the_first_is_in_flight_is_409(
    client: AsyncClient, db: AsyncDatabase[Document], paused_writes: asyncio.Event
) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}/messages"
    first = asyncio.create_task(client.post(path, json={"content": "slow"}, headers=keyed(user, "k")))
    while await db[IDEMPOTENCY_KEYS].count_documents({}) == 0:
        await asyncio.sleep(0.01)
    retry = await client.post(path, json={"content": "slow"}, headers=keyed(user, "k"))
    assert retry.status_code == 409 and 1 <= int(retry.headers["Retry-After"]) <= 10
    paused_writes.set()
    assert (await first).status_code == 201
    replay = await client.post(path, json={"content": "slow"}, headers=keyed(user, "k"))
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert await message_count(db, session["_id"]) == 1


async def test_a_stale_claim_is_taken_over_and_the_work_is_done_once(
    client: AsyncClient, db: AsyncDatabase[Document], paused_writes: asyncio.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mark of a request in flight lasts LEASE: after a crash a retry proceeds. Should the
    first request still be running then, only one of the two stores its messages."""
    monkeypatch.setattr(idempotency, "LEASE", timedelta(milliseconds=300))
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}/messages"
    stuck = asyncio.create_task(client.post(path, json={"content": "x"}, headers=keyed(user, "k")))
    await asyncio.sleep(0.5)
    retry = asyncio.create_task(client.post(path, json={"content": "x"}, headers=keyed(user, "k")))
    await asyncio.sleep(0.1)
    paused_writes.set()
    answers = sorted([(await stuck).status_code, (await retry).status_code])
    assert answers == [201, 409]
    assert await message_count(db, session["_id"]) == 1
    stored = await db[SESSIONS].find_one({"_id": ObjectId(session["_id"])})
    assert stored is not None and stored["message_count"] == 1
    replay = await client.post(path, json={"content": "x"}, headers=keyed(user, "k"))
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"


async def test_records_expire_with_a_ttl_index(db: AsyncDatabase[Document], client: AsyncClient) -> None:
    indexes = await db[IDEMPOTENCY_KEYS].index_information()
    assert indexes["expires_at_ttl"]["expireAfterSeconds"] == 0
    user = await make_user(client)
    await client.post("/chat/sessions", json={"title": "t"}, headers=keyed(user, "k"))
    record = await db[IDEMPOTENCY_KEYS].find_one({})
    assert record is not None
    assert record["expires_at"] - record["created_at"] == timedelta(hours=24)
