"""Programs find their sessions again by name, say where they came from, and keep metadata."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bson import ObjectId
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import SESSIONS, Document
from app.core.types import utc_now
from tests.explain import assert_uses_index
from tests.factories import all_pages, make_session, make_user

AGENT_SESSION = {"name": "cli-40f58fa9", "platform": "cli", "metadata": {"session_origin": "cli"}}


async def test_named_create_is_get_or_create(client: AsyncClient) -> None:
    user = await make_user(client)
    first = await client.post("/chat/sessions", json=AGENT_SESSION, headers=user.headers)
    assert first.status_code == 201, first.text
    created = first.json()
    assert created["name"] == "cli-40f58fa9" and created["title"] == "cli-40f58fa9"
    assert created["platform"] == "cli" and created["metadata"] == {"session_origin": "cli"}

    again = {**AGENT_SESSION, "title": "other title", "metadata": {"other": 1}}
    second = await client.post("/chat/sessions", json=again, headers=user.headers)
    assert second.status_code == 200
    assert second.json() == created, "an existing session is returned unchanged"

    other_user = await make_user(client)
    theirs = await client.post("/chat/sessions", json=AGENT_SESSION, headers=other_user.headers)
    assert theirs.status_code == 201 and theirs.json()["_id"] != created["_id"], "names are per user"


async def test_session_fields_and_defaults(client: AsyncClient) -> None:
    user = await make_user(client)
    plain = await make_session(client, user, "Plain")
    assert plain["name"] is None and plain["platform"] == "api" and plain["metadata"] == {}
    named = await client.post("/chat/sessions", json={"name": "n1", "title": "Shown"}, headers=user.headers)
    assert named.json()["title"] == "Shown"
    bad = [
        {},  # neither title nor name
        {"metadata": {"a": 1}},
        {"name": ""},
        {"name": "x" * 129},
        {"name": "tab\there"},
        {"name": "nul\x00"},
        {"title": "t", "platform": "Web"},
        {"title": "t", "platform": "9cli"},
        {"title": "t", "platform": "a" * 33},
        {"title": "t", "metadata": []},
        {"title": "t", "name": None, "_id": ""},
    ]
    for body in bad:
        response = await client.post("/chat/sessions", json=body, headers=user.headers)
        assert response.status_code == 422, body
    assert (await client.post("/chat/sessions", json={"name": "x" * 128}, headers=user.headers)).status_code == 201


async def test_metadata_rules_name_the_key_path(client: AsyncClient) -> None:
    user = await make_user(client)

    def nested(depth: int) -> dict[str, Any]:
        value: dict[str, Any] = {}
        for _ in range(depth - 1):
            value = {"k": value}
        return value

    cases = {
        "metadata key run.$where": {"run": {"$where": 1}},
        "metadata key run.a.b": {"run": {"a.b": 1}},
        "metadata key tools.0.nul": {"tools": [{"nul\x00": 1}]},
        "metadata key (top level)": {"": 1},
        "metadata key " + "k" * 40 + "…": {"k" * 65: 1},
        "nested deeper than 8": nested(9),
        "larger than 16384 bytes": {"blob": "x" * 16_400},
        "integers must fit in 64 bits": {"big": 2**63},
    }
    for expected, metadata in cases.items():
        response = await client.post("/chat/sessions", json={"title": "t", "metadata": metadata}, headers=user.headers)
        assert response.status_code == 422, metadata
        message = str(response.json()["detail"])
        assert expected in message, (expected, message)
        assert "x" * 100 not in message, "the rejected value is not echoed"
    ok = await client.post("/chat/sessions", json={"title": "t", "metadata": nested(8)}, headers=user.headers)
    assert ok.status_code == 201


async def test_metadata_is_returned_exactly_as_sent(client: AsyncClient) -> None:
    user = await make_user(client)
    metadata = {
        "z": 1,
        "a": 1.0,
        "m": 2.5,
        "neg": -(2**63),
        "list": [1, "two", None, True, {"deep": [0.1]}],
        "unicode": "héllo ✓",
        "empty": {},
    }
    session = (
        await client.post("/chat/sessions", json={"title": "t", "metadata": metadata}, headers=user.headers)
    ).json()
    raw = (await client.get(f"/chat/sessions/{session['_id']}", headers=user.headers)).text
    assert '"metadata":{"z":1,"a":1.0,"m":2.5,' in raw.replace(" ", ""), "key order and number types kept"
    assert (await client.get(f"/chat/sessions/{session['_id']}", headers=user.headers)).json()["metadata"] == metadata


async def test_no_stored_session_has_a_missing_null_or_empty_id_regression(
    client: AsyncClient, db: AsyncDatabase[Document]
) -> None:
    """The seed bug (a session stored with a null id, and an empty-string _id that made every
    second insert a 500) stays impossible on every create path, sequential and concurrent."""
    user = await make_user(client)
    for i in range(3):
        assert (await client.post("/chat/sessions", json={"title": f"t{i}"}, headers=user.headers)).status_code == 201
        assert (await client.post("/chat/sessions", json={"name": f"n{i}"}, headers=user.headers)).status_code == 201
    bodies = [{"title": f"c{i}"} for i in range(10)] + [{"name": "same"} for _ in range(10)]
    bodies += [{"name": f"k{i}"} for i in range(10)]
    responses = await asyncio.gather(*(client.post("/chat/sessions", json=b, headers=user.headers) for b in bodies))
    assert all(r.status_code in (200, 201) for r in responses)
    stored = await db[SESSIONS].find({}, {"_id": 1}).to_list(None)
    assert len(stored) == 6 + 10 + 1 + 10
    assert all(d["_id"] and not isinstance(d["_id"], str) for d in stored)
    assert await db[SESSIONS].count_documents({"_id": {"$in": [None, ""]}}) == 0


async def test_concurrent_get_or_create_yields_one_session(client: AsyncClient) -> None:
    user = await make_user(client)
    responses = await asyncio.gather(
        *(client.post("/chat/sessions", json=AGENT_SESSION, headers=user.headers) for _ in range(50))
    )
    assert sorted(r.status_code for r in responses) == [200] * 49 + [201]
    assert len({r.json()["_id"] for r in responses}) == 1
    listed = await all_pages(client, user, "/chat/sessions")
    assert len(listed) == 1


@pytest.mark.usefixtures("read_strategy")
async def test_find_by_name_and_filter_by_platform(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    user = await make_user(client)
    other = await make_user(client)
    await client.post("/chat/sessions", json=AGENT_SESSION, headers=other.headers)
    mine = (await client.post("/chat/sessions", json=AGENT_SESSION, headers=user.headers)).json()
    for i in range(5):
        await client.post("/chat/sessions", json={"title": f"web {i}", "platform": "web"}, headers=user.headers)
    await make_session(client, user, "api one")

    found = (await client.get("/chat/sessions", params={"name": "cli-40f58fa9"}, headers=user.headers)).json()
    assert found == {"items": [mine], "next_cursor": None}
    missing = (await client.get("/chat/sessions", params={"name": "nope"}, headers=user.headers)).json()
    assert missing == {"items": [], "next_cursor": None}

    web = await all_pages(client, user, "/chat/sessions", limit=2, platform="web")
    assert [s["title"] for s in web] == [f"web {i}" for i in reversed(range(5))]
    assert [s["_id"] for s in await all_pages(client, user, "/chat/sessions", platform="cli")] == [mine["_id"]]
    assert (await client.get("/chat/sessions", params={"platform": "Bad!"}, headers=user.headers)).status_code == 422

    user_id = ObjectId(mine["user_id"])
    await assert_uses_index(db, SESSIONS, {"user_id": user_id, "name": "cli-40f58fa9"})
    await assert_uses_index(db, SESSIONS, {"user_id": user_id, "platform": "web", "updated_at": {"$lt": utc_now()}})


async def test_patch_title_name_and_metadata_merge(client: AsyncClient) -> None:
    user = await make_user(client)
    session = (
        await client.post(
            "/chat/sessions",
            json={"name": "a", "metadata": {"run": {"id": 1, "model": "m1"}, "keep": True, "drop": "x"}},
            headers=user.headers,
        )
    ).json()
    await client.post("/chat/sessions", json={"name": "taken"}, headers=user.headers)
    path = f"/chat/sessions/{session['_id']}"

    patched = await client.patch(
        path,
        json={"title": "New", "metadata": {"run": {"model": "m2", "tokens": 5}, "drop": None}},
        headers=user.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "New"
    assert patched.json()["metadata"] == {"run": {"id": 1, "model": "m2", "tokens": 5}, "keep": True}

    assert (await client.patch(path, json={"name": "taken"}, headers=user.headers)).status_code == 409
    renamed = await client.patch(path, json={"name": "b"}, headers=user.headers)
    assert renamed.json()["name"] == "b"
    unnamed = await client.patch(path, json={"name": None}, headers=user.headers)
    assert unnamed.json()["name"] is None
    again = await client.post("/chat/sessions", json={"name": "b"}, headers=user.headers)
    assert again.status_code == 201, "a removed name is free again"

    cleared = await client.patch(path, json={"metadata": None}, headers=user.headers)
    assert cleared.json()["metadata"] == {}
    too_big = await client.patch(path, json={"metadata": {"a": "x" * 9000}}, headers=user.headers)
    assert too_big.status_code == 200
    over = await client.patch(path, json={"metadata": {"b": "x" * 9000}}, headers=user.headers)
    assert over.status_code == 422 and "16384" in str(over.json()["detail"])
    for bad in ({}, {"title": None}, {"title": ""}, {"metadata": {"$set": 1}}, {"user_id": user.id}):
        assert (await client.patch(path, json=bad, headers=user.headers)).status_code == 422, bad

    stranger = await make_user(client)
    assert (await client.patch(path, json={"title": "mine"}, headers=stranger.headers)).status_code == 404


async def test_concurrent_metadata_patches_all_land(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}"
    await asyncio.gather(
        *(client.patch(path, json={"metadata": {f"k{i}": i}}, headers=user.headers) for i in range(20))
    )
    stored = (await client.get(path, headers=user.headers)).json()
    assert sorted(stored["metadata"].items()) == sorted({f"k{i}": i for i in range(20)}.items()), "no patch lost"


async def test_append_by_name_answers_201_at_once_and_counts_the_new_session_regression(client: AsyncClient) -> None:
    """Regression: the first POST /chat/sessions/by-name answered 500 (its own response was
    read back through a model that takes no JSON dates), hidden by clients that retry 5xx with
    the same Idempotency-Key and get the stored replay; the new session was then never counted."""
    user = await make_user(client)
    body = {"name": "nightly-report", "platform": "cli", "messages": [{"content": "Report for 2026-11-22"}]}
    for key_headers in ({}, {"Idempotency-Key": "by-name-1"}):
        body["name"] = f"nightly-report{len(key_headers)}"
        first = await client.post("/chat/sessions/by-name", json=body, headers={**user.headers, **key_headers})
        assert first.status_code == 201, first.text
        assert first.json()["created"] is True and first.json()["session"]["message_count"] == 1
    again = await client.post("/chat/sessions/by-name", json=body, headers=user.headers)
    assert again.status_code == 201 and again.json()["created"] is False
    assert len(await all_pages(client, user, "/chat/sessions")) == 2
