"""API keys for programs: shown once, stored as hashes, scoped, revocable, and never able to
manage keys, passwords or the server (OWASP API2 and API5: function-level authorization)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import API_KEYS, Document
from tests.conftest import StartApp
from tests.factories import TestUser, bearer, make_admin, make_session, make_user


async def _new_key(client: AsyncClient, user: TestUser, scopes: list[str], **extra: Any) -> dict[str, Any]:
    body = {"name": "my script", "scopes": scopes, "current_password": user.password, **extra}
    response = await client.post("/auths/api-keys", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_key_is_shown_once_and_stored_as_a_hash(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    user = await make_user(client)
    created = await _new_key(client, user, ["read"], expires_in_days=7)
    key = created["key"]
    assert key.startswith("cak_") and len(key) > 40 and key.startswith(created["prefix"])
    assert created["scopes"] == ["read"] and created["last_used_at"] is None
    assert created["expires_at"] > datetime.now(UTC).isoformat()
    stored = await db[API_KEYS].find_one({"_id": ObjectId(created["_id"])})
    assert stored is not None and key not in str(stored) and len(stored["key_hash"]) == 64

    listed = await client.get("/auths/api-keys", headers=user.headers)
    assert listed.status_code == 200
    assert key not in listed.text and "hash" not in listed.text and "slot" not in listed.text
    assert listed.json()["next_cursor"] is None
    (item,) = listed.json()["items"]
    assert set(item) == {"_id", "name", "prefix", "scopes", "created_at", "last_used_at", "expires_at"}


async def test_keys_authenticate_and_record_their_last_use(client: AsyncClient) -> None:
    user = await make_user(client)
    key = (await _new_key(client, user, ["read", "write"]))["key"]
    me = await client.get("/auths/me", headers=bearer(key))
    assert me.status_code == 200 and me.json()["_id"] == user.id
    created = await client.post("/chat/sessions", json={"title": "from a script"}, headers=bearer(key))
    assert created.status_code == 201 and created.json()["user_id"] == user.id
    (listed,) = (await client.get("/auths/api-keys", headers=user.headers)).json()["items"]
    assert listed["last_used_at"] is not None


async def test_a_read_only_key_cannot_write(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    key = (await _new_key(client, user, ["read"]))["key"]
    path = f"/chat/sessions/{session['_id']}"
    assert (await client.get("/chat/sessions", headers=bearer(key))).status_code == 200
    assert (await client.get(f"{path}/messages", headers=bearer(key))).status_code == 200
    writes = [
        await client.post("/chat/sessions", json={"title": "t"}, headers=bearer(key)),
        await client.patch(path, json={"title": "t"}, headers=bearer(key)),
        await client.post(f"{path}/messages", json={"content": "hi"}, headers=bearer(key)),
        await client.delete(path, headers=bearer(key)),
    ]
    assert [r.status_code for r in writes] == [403] * 4
    assert (await client.get(path, headers=user.headers)).json()["message_count"] == 0


async def test_keys_cannot_manage_keys_passwords_sessions_or_the_server(
    client: AsyncClient, db: AsyncDatabase[Document]
) -> None:
    admin = await make_admin(client, db)
    key = (await _new_key(client, admin, ["read", "write"]))["key"]
    password = {"current_password": admin.password, "new_password": "another-password"}
    calls = [
        await client.get("/auths/api-keys", headers=bearer(key)),
        await client.post(
            "/auths/api-keys",
            json={"name": "n", "scopes": ["read"], "current_password": admin.password},
            headers=bearer(key),
        ),
        await client.delete(f"/auths/api-keys/{ObjectId()}", headers=bearer(key)),
        await client.post("/auths/password", json=password, headers=bearer(key)),
        await client.post("/auths/logout", headers=bearer(key)),
        await client.get("/admin/users", headers=bearer(key)),
        await client.get("/admin/stats", headers=bearer(key)),
    ]
    assert [r.status_code for r in calls] == [403] * len(calls)


async def test_a_revoked_key_stops_working_on_every_server(client: AsyncClient, start_app: StartApp) -> None:
    other_server = await start_app(api_key_cache_seconds=60)
    user = await make_user(client)
    created = await _new_key(client, user, ["read"])
    assert (await other_server.get("/auths/me", headers=bearer(created["key"]))).status_code == 200  # now cached

    assert (await client.delete(f"/auths/api-keys/{created['_id']}", headers=user.headers)).status_code == 204
    assert (await client.get("/auths/me", headers=bearer(created["key"]))).status_code == 401
    for _ in range(50):
        if (await other_server.get("/auths/me", headers=bearer(created["key"]))).status_code == 401:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the revoked key still works on the other server")
    assert (await client.get("/auths/api-keys", headers=user.headers)).json()["items"] == []
    assert (await client.delete(f"/auths/api-keys/{created['_id']}", headers=user.headers)).status_code == 404


async def test_one_cannot_see_or_revoke_another_users_key(client: AsyncClient) -> None:
    owner, other = await make_user(client), await make_user(client)
    created = await _new_key(client, owner, ["read"])
    assert (await client.get("/auths/api-keys", headers=other.headers)).json()["items"] == []
    for key_id in (created["_id"], "not-an-id"):
        assert (await client.delete(f"/auths/api-keys/{key_id}", headers=other.headers)).status_code == 404
    assert (await client.get("/auths/me", headers=bearer(created["key"]))).status_code == 200


async def test_expired_and_made_up_keys_are_401(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    user = await make_user(client)
    created = await _new_key(client, user, ["read"], expires_in_days=1)
    past = datetime.now(UTC) - timedelta(seconds=1)
    await db[API_KEYS].update_one({"_id": ObjectId(created["_id"])}, {"$set": {"expires_at": past}})
    assert (await client.get("/auths/me", headers=bearer(created["key"]))).status_code == 401
    assert (await client.get("/auths/me", headers=bearer("cak_" + "x" * 43))).status_code == 401


async def test_a_disabled_owners_keys_stop_working(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    admin = await make_admin(client, db)
    user = await make_user(client)
    key = (await _new_key(client, user, ["read"]))["key"]
    assert (await client.get("/auths/me", headers=bearer(key))).status_code == 200
    await client.patch(f"/admin/users/{user.id}", json={"disabled": True}, headers=admin.headers)
    assert (await client.get("/auths/me", headers=bearer(key))).status_code == 401
    await client.patch(f"/admin/users/{user.id}", json={"disabled": False}, headers=admin.headers)
    assert (await client.get("/auths/me", headers=bearer(key))).status_code == 200


async def test_key_request_validation(client: AsyncClient) -> None:
    user = await make_user(client)
    bad: list[dict[str, Any]] = [
        {"name": "n", "scopes": ["read"]},  # no current_password
        {"name": "n", "scopes": []},
        {"name": "n", "scopes": ["write"]},
        {"name": "n", "scopes": ["read", "admin"]},
        {"name": "", "scopes": ["read"]},
        {"name": "n", "scopes": ["read"], "expires_in_days": 0},
        {"name": "n", "scopes": ["read"], "user_id": str(ObjectId())},
        {"name": "n", "scopes": ["read"], "_id": str(ObjectId())},
        {"name": "n", "scopes": ["read"], "created_at": "2020-01-01T00:00:00Z"},
        {"name": "n", "scopes": ["read"], "key_hash": "0" * 64},
    ]
    for body in bad:
        full = body if body == bad[0] else {"current_password": user.password, **body}
        assert (await client.post("/auths/api-keys", json=full, headers=user.headers)).status_code == 422, body
    created = await _new_key(client, user, ["write", "read"])
    assert created["scopes"] == ["read", "write"]
