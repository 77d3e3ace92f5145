"""API keys for programs: shown once, stored as hashes, scoped, revocable, and never able to
manage keys, passwords or the server (OWASP API2 and API5: function-level authorization)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
from bson import ObjectId
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import API_KEYS, IDEMPOTENCY_KEYS, Document
from tests.conftest import StartApp
from tests.factories import TestUser, all_pages, bearer, make_admin, make_session, make_user


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


async def test_creating_a_key_needs_the_current_password_and_is_throttled(start_app: StartApp) -> None:
    """Issue 8, hole 6: an access token alone created a key (a stolen token became a
    persistent backdoor)."""
    server = await start_app(login_max_failures=3, login_lockout_seconds=60)
    user = await make_user(server)
    wrong = {"name": "k", "scopes": ["read"], "current_password": "not-my-password"}
    statuses = [(await server.post("/auths/api-keys", json=wrong, headers=user.headers)).status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]
    right = {**wrong, "current_password": user.password}
    assert (await server.post("/auths/api-keys", json=right, headers=user.headers)).status_code == 429
    assert (await server.get("/auths/api-keys", headers=user.headers)).json()["items"] == []


async def test_keys_expire_by_default_and_within_the_maximum(start_app: StartApp) -> None:
    """Issue 8, hole 6: keys never expired unless asked to."""
    server = await start_app(api_key_default_days=90, api_key_max_days=120)
    user = await make_user(server)
    created = await _new_key(server, user, ["read"])
    expires_at = datetime.fromisoformat(created["expires_at"])
    assert abs(expires_at - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=1)
    too_long = {"name": "k", "scopes": ["read"], "current_password": user.password, "expires_in_days": 121}
    response = await server.post("/auths/api-keys", json=too_long, headers=user.headers)
    assert response.status_code == 400 and "120" in response.json()["detail"]
    assert (await _new_key(server, user, ["read"], expires_in_days=120))["expires_at"]


async def test_a_password_change_or_reset_revokes_the_users_keys(
    client: AsyncClient, db: AsyncDatabase[Document]
) -> None:
    """Issue 8, hole 6: keys survived the owner's password change and an admin reset."""
    admin = await make_admin(client, db)
    user = await make_user(client)
    key = (await _new_key(client, user, ["read"]))["key"]
    change = {"current_password": user.password, "new_password": "a-new-password-1"}
    assert (await client.post("/auths/password", json=change, headers=user.headers)).status_code == 204
    assert (await client.get("/auths/me", headers=bearer(key))).status_code == 401
    user.password = "a-new-password-1"
    key = (await _new_key(client, user, ["read"]))["key"]
    reset = {"new_password": "reset-by-admin-1"}
    assert (await client.post(f"/admin/users/{user.id}/password", json=reset, headers=admin.headers)).status_code == 204
    assert (await client.get("/auths/me", headers=bearer(key))).status_code == 401
    assert await db[API_KEYS].count_documents({"user_id": ObjectId(user.id)}) == 0


async def test_at_most_50_keys_even_when_created_concurrently(start_app: StartApp, db: AsyncDatabase[Document]) -> None:
    """Issue 8, hole 6: keys were unlimited (and the list stopped at 1,000, hiding the rest)."""
    server = await start_app(login_max_in_flight_per_account=10, password_hash_wait_seconds=30)
    user = await make_user(server)
    owner, now = ObjectId(user.id), datetime.now(UTC)
    filler = [
        {"user_id": owner, "slot": f"{owner}:{n}", "name": f"k{n}", "prefix": "cak_xxxxxxxx", "key_hash": f"{n:064d}",
         "scopes": ["read"], "created_at": now, "last_used_at": None, "expires_at": now + timedelta(days=1)}
        for n in range(47)
    ]  # fmt: skip
    await db[API_KEYS].insert_many(filler)
    body = {"name": "k", "scopes": ["read"], "current_password": user.password}
    responses = await asyncio.gather(
        *(server.post("/auths/api-keys", json=body, headers=user.headers) for _ in range(8))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 3 + [409] * 5
    assert await db[API_KEYS].count_documents({"user_id": owner}) == 50
    conflict = next(response for response in responses if response.status_code == 409)
    assert "50" in conflict.json()["detail"]
    keys = await all_pages(server, user, "/auths/api-keys", limit=7)
    assert len(keys) == 50 and len({key["_id"] for key in keys}) == 50


async def test_the_key_list_pages(client: AsyncClient) -> None:
    """Issue 8, hole 6: the list was one unpaged answer cut at 1,000."""
    user = await make_user(client)
    made = [(await _new_key(client, user, ["read"], name=f"key {i}"))["_id"] for i in range(5)]
    first = (await client.get("/auths/api-keys", params={"limit": 2}, headers=user.headers)).json()
    assert [key["_id"] for key in first["items"]] == made[:2] and first["next_cursor"]
    assert [key["_id"] for key in await all_pages(client, user, "/auths/api-keys", limit=2)] == made
    forged = await client.get("/auths/api-keys", params={"cursor": first["next_cursor"] + "x"}, headers=user.headers)
    assert forged.status_code == 400
    other = await make_user(client)
    foreign = await client.get("/auths/api-keys", params={"cursor": first["next_cursor"]}, headers=other.headers)
    assert foreign.status_code == 200 and foreign.json()["items"] == []


async def test_a_retried_key_creation_gets_the_same_key_which_is_stored_sealed(
    client: AsyncClient, db: AsyncDatabase[Document]
) -> None:
    """Issue 12: a program whose key creation timed out retries it with its Idempotency-Key and
    gets the key it would have lost, not a second one; the database never holds the key or the
    password in a form a reader can use."""
    user = await make_user(client)
    body = {"name": "deploy bot", "scopes": ["read", "write"], "current_password": user.password}
    keyed = {**user.headers, "Idempotency-Key": "create-deploy-bot-1"}
    first = await client.post("/auths/api-keys", json=body, headers=keyed)
    retried = [await client.post("/auths/api-keys", json=body, headers=keyed) for _ in range(2)]
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    for retry in retried:
        assert retry.status_code == 201 and retry.text == first.text
        assert retry.headers["idempotent-replayed"] == "true" and retry.headers["cache-control"] == "no-store"
    assert len(await all_pages(client, user, "/auths/api-keys")) == 1
    assert (await client.get("/auths/me", headers=bearer(first.json()["key"]))).status_code == 200

    (record,) = await db[IDEMPOTENCY_KEYS].find({"user_id": ObjectId(user.id)}).to_list()
    raw = bson.encode(record)
    assert first.json()["key"].encode() not in raw and user.password.encode() not in raw
    assert record["body"] is None and len(record["sealed_body"]) > len(first.text)
    bare_hash = hashlib.sha256(b"POST /auths/api-keys\n" + json.dumps(body).encode()).hexdigest()
    assert record["fingerprint"] != bare_hash  # an HMAC: a bare hash would let a reader guess the password


async def test_a_key_creation_retry_still_needs_the_password_and_the_same_body(client: AsyncClient) -> None:
    user = await make_user(client)
    body = {"name": "bot", "scopes": ["read"], "current_password": user.password}
    keyed = {**user.headers, "Idempotency-Key": "bot-key"}
    assert (await client.post("/auths/api-keys", json=body, headers=keyed)).status_code == 201
    wrong_password = await client.post("/auths/api-keys", json={**body, "current_password": "guess"}, headers=keyed)
    assert wrong_password.status_code == 400 and "cak_" not in wrong_password.text
    other_body = await client.post("/auths/api-keys", json={**body, "name": "other"}, headers=keyed)
    assert other_body.status_code == 422 and "cak_" not in other_body.text
    stranger = await make_user(client)
    theirs = {"name": "bot", "scopes": ["read"], "current_password": stranger.password}
    own_key = await client.post(
        "/auths/api-keys", json=theirs, headers={**stranger.headers, "Idempotency-Key": "bot-key"}
    )
    assert own_key.status_code == 201 and "idempotent-replayed" not in own_key.headers  # keys are per user
    assert len(await all_pages(client, user, "/auths/api-keys")) == 1


async def test_a_key_may_revoke_itself_and_nothing_else(client: AsyncClient) -> None:
    """Issue 20: `chat logout` revokes the CLI's own key with that key (no password needed)."""
    user = await make_user(client)
    read_only, other = await _new_key(client, user, ["read"]), await _new_key(client, user, ["read", "write"])
    # A login is no key: 404.
    assert (await client.delete("/auths/api-keys/current", headers=user.headers)).status_code == 404
    assert (await client.delete(f"/auths/api-keys/{other['_id']}", headers=bearer(read_only["key"]))).status_code == 403
    assert (await client.delete("/auths/api-keys/current", headers=bearer(read_only["key"]))).status_code == 204
    assert (await client.get("/auths/me", headers=bearer(read_only["key"]))).status_code == 401
    assert (await client.get("/auths/me", headers=bearer(other["key"]))).status_code == 200
    remaining = (await client.get("/auths/api-keys", headers=user.headers)).json()["items"]
    assert [key["_id"] for key in remaining] == [other["_id"]]
