"""Who may ask for what: one reply at a time per session, MODEL_MAX_PER_USER per user,
ownership, scopes, admin-only agents, deleted agents, idempotent asks."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.assistant.runner import record
from app.core.db import GENERATIONS, Document
from tests.assistant.fake_upstream import FakeUpstream, Script
from tests.assistant.helpers import wait_for_reply
from tests.factories import TestUser, make_session, make_user

SLOW = Script(pieces=["x"] * 100, delay=0.05)
BRIEF = Script(pieces=["x"] * 30, delay=0.05)  # 1.5 s


async def _ask(client: AsyncClient, user: TestUser, session_id: str, **extra: Any) -> Any:
    return await client.post(
        f"/chat/sessions/{session_id}/messages",
        json={"content": "hi", "reply": {"agent": "helper"}},
        headers={**user.headers, **extra},
    )


async def test_one_reply_at_a_time_per_session_and_a_bound_per_user(
    client: AsyncClient, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    upstream.default = SLOW
    user = await make_user(client)
    sessions = [(await make_session(client, user))["_id"] for _ in range(3)]
    first = await _ask(client, user, sessions[0])
    assert first.status_code == 201
    busy = await client.post(f"/chat/sessions/{sessions[0]}/replies", headers=user.headers)
    assert busy.status_code == 409 and "already" in busy.json()["detail"]
    assert (await _ask(client, user, sessions[1])).status_code == 201
    third = await _ask(client, user, sessions[2])
    assert third.status_code == 429 and int(third.headers["Retry-After"]) >= 1
    # refused asks store nothing
    listed = await client.get(f"/chat/sessions/{sessions[2]}/messages", headers=user.headers)
    assert listed.json()["items"] == []
    other = await make_user(client)  # another user is not held back by this one
    assert (await _ask(client, other, (await make_session(client, other))["_id"])).status_code == 201


async def test_idempotency_key_replays_both_messages_and_starts_nothing_more(
    client: AsyncClient, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    user = await make_user(client)
    session_id = (await make_session(client, user))["_id"]
    first = await _ask(client, user, session_id, **{"Idempotency-Key": "ask-1"})
    done = await wait_for_reply(client, user, session_id, first.json()["reply"]["_id"])
    again = await _ask(client, user, session_id, **{"Idempotency-Key": "ask-1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(upstream.requests) == 1
    items = (await client.get(f"/chat/sessions/{session_id}/messages", headers=user.headers)).json()["items"]
    assert [m["_id"] for m in items] == [first.json()["message"]["_id"], done["_id"]]


async def test_ownership_scopes_and_admin_only(client: AsyncClient, agent: dict[str, Any]) -> None:
    owner, stranger = await make_user(client), await make_user(client)
    session_id = (await make_session(client, owner))["_id"]
    reply_id = (await _ask(client, owner, session_id)).json()["reply"]["_id"]
    for path in (
        f"/chat/sessions/{session_id}/replies",
        f"/chat/sessions/{session_id}/messages/{reply_id}/cancel",
        f"/chat/sessions/{session_id}/messages/{'0' * 24}/cancel",
    ):
        assert (await client.post(path, headers=stranger.headers)).status_code == 404, path
    assert (await _ask(client, stranger, session_id)).status_code == 404

    created = await client.post(
        "/auths/api-keys",
        json={"name": "ro", "scopes": ["read"], "current_password": owner.password},
        headers=owner.headers,
    )
    read_only = {"Authorization": f"Bearer {created.json()['key']}"}
    response = await client.post(f"/chat/sessions/{session_id}/replies", headers=read_only)
    assert response.status_code == 403
    assert (await client.get("/agents", headers=read_only)).status_code == 200

    for method, path in (("GET", "/admin/agents"), ("POST", "/admin/agents"), ("DELETE", "/admin/agents/helper")):
        body = {"name": "x", "model": "m"} if method == "POST" else None
        assert (await client.request(method, path, json=body, headers=owner.headers)).status_code == 403


async def test_agents_admin_crud_and_a_deleted_agent(
    client: AsyncClient, admin: TestUser, agent: dict[str, Any]
) -> None:
    headers = admin.headers
    duplicate = await client.post("/admin/agents", json={"name": "helper", "model": "m"}, headers=headers)
    assert duplicate.status_code == 409
    bad = await client.post("/admin/agents", json={"name": "Not A Slug", "model": "m"}, headers=headers)
    assert bad.status_code == 422
    patched = await client.patch("/admin/agents/helper", json={"temperature": 0.5}, headers=headers)
    assert patched.status_code == 200 and patched.json()["temperature"] == 0.5
    removed = await client.patch("/admin/agents/helper", json={"temperature": None}, headers=headers)
    assert removed.json()["temperature"] is None
    assert (await client.get("/admin/agents/helper", headers=headers)).json()["model"] == "fake-small"

    user = await make_user(client)
    listed = await client.get("/agents", headers=user.headers)
    assert [a["name"] for a in listed.json()["items"]] == ["helper"]
    models = (await client.get("/models", headers=user.headers)).json()
    assert models == {
        "items": [{"id": "helper", "kind": "agent", "model": "fake-small", "description": "Helps"}],
        "upstream_reachable": True,
    }
    session = await client.post("/chat/sessions", json={"title": "t", "agent": "helper"}, headers=user.headers)
    session_id = session.json()["_id"]
    assert (await client.delete("/admin/agents/helper", headers=headers)).status_code == 204
    assert (await client.get("/admin/agents/helper", headers=headers)).status_code == 404
    assert (await client.get(f"/chat/sessions/{session_id}", headers=user.headers)).status_code == 200
    refused = await client.post(f"/chat/sessions/{session_id}/replies", headers=user.headers)
    assert refused.status_code == 409 and "helper" in refused.json()["detail"]
    cleared = await client.patch(f"/chat/sessions/{session_id}", json={"agent": None}, headers=user.headers)
    assert cleared.status_code == 200 and "agent" not in cleared.json()
    picked = await client.post(f"/chat/sessions/{session_id}/replies", json={"model": "m"}, headers=user.headers)
    assert picked.status_code == 422  # MODEL_ALLOW_ANY is off


async def test_any_model_when_allowed_and_an_unreachable_upstream(
    client: AsyncClient, start_app: Any, upstream: FakeUpstream
) -> None:
    open_app = await start_app(model_allow_any=True)
    user = await make_user(open_app)
    models = (await open_app.get("/models", headers=user.headers)).json()
    assert [(m["id"], m["kind"]) for m in models["items"]] == [("fake-large", "model"), ("fake-small", "model")]
    session_id = (await make_session(open_app, user))["_id"]
    asked = await open_app.post(
        f"/chat/sessions/{session_id}/messages",
        json={"content": "hi", "reply": {"model": "fake-large"}},
        headers=user.headers,
    )
    assert asked.status_code == 201 and asked.json()["reply"]["metadata"] == {"model": "fake-large"}
    assert (await wait_for_reply(open_app, user, session_id, asked.json()["reply"]["_id"]))["status"] == "complete"

    down = await start_app(model_allow_any=True, model_base_url="http://127.0.0.1:9/v1")
    listed = (await down.get("/models", headers=user.headers)).json()
    assert listed == {"items": [], "upstream_reachable": False}


async def test_a_slot_another_server_holds_is_passed_over_and_refused_asks_send_nothing_upstream(
    client: AsyncClient, db: AsyncDatabase[Document], upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    """An ask tries the lowest slot this server's replies do not hold, without reading the
    user's replies: when another server holds it, the ask is made again, reading them."""
    upstream.default = BRIEF
    user = await make_user(client)
    held, free = [(await make_session(client, user))["_id"] for _ in range(2)]
    elsewhere = {"user_id": ObjectId(user.id), "session_id": ObjectId(held), "message_id": ObjectId(), "slot": 0}
    await db[GENERATIONS].insert_one(record(elsewhere))
    busy = await _ask(client, user, held)
    assert busy.status_code == 409 and "already" in busy.json()["detail"]
    asked = await _ask(client, user, free)
    assert asked.status_code == 201
    generation = await db[GENERATIONS].find_one({"session_id": ObjectId(free)})
    assert generation is not None and generation["slot"] == 1
    assert (await _ask(client, user, (await make_session(client, user))["_id"])).status_code == 429
    assert (await wait_for_reply(client, user, free, asked.json()["reply"]["_id"]))["status"] == "complete"
    assert len(upstream.requests) == 1  # the refused asks never called the model
