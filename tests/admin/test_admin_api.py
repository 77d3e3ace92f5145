"""The admin REST API (OWASP API5: broken function-level authorization; API3: mass assignment)."""

from __future__ import annotations

import asyncio
import contextlib

from bson import ObjectId
from fastapi import FastAPI
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import (
    API_KEYS,
    IDEMPOTENCY_KEYS,
    MESSAGE_TERMS,
    MESSAGES,
    REFRESH_TOKENS,
    SESSIONS,
    TERM_COUNT_DELTAS,
    TERM_COUNTS,
    USERS,
    Document,
)
from app.core.types import utc_now
from tests.factories import (
    all_pages,
    login_tokens,
    make_admin,
    make_session,
    make_user,
    post_message,
    wait_for_search_index,
)

ADMIN_CALLS = [
    ("GET", "/admin/users", None),
    ("POST", "/admin/users", {"username": "someone", "password": "long-enough-1"}),
    ("PATCH", f"/admin/users/{ObjectId()}", {"role": "admin"}),
    ("POST", f"/admin/users/{ObjectId()}/password", {"new_password": "long-enough-1"}),
    ("DELETE", f"/admin/users/{ObjectId()}", None),
    ("GET", "/admin/stats", None),
]


async def test_non_admins_get_403_and_strangers_401(client: AsyncClient) -> None:
    user = await make_user(client)
    for method, path, body in ADMIN_CALLS:
        assert (await client.request(method, path, json=body, headers=user.headers)).status_code == 403, path
        assert (await client.request(method, path, json=body)).status_code == 401, path


async def test_a_user_cannot_make_themselves_admin(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    user = await make_user(client)
    own = await client.patch(f"/admin/users/{user.id}", json={"role": "admin"}, headers=user.headers)
    assert own.status_code == 403
    forged = await client.post(
        "/auths/register", json={"username": "sneaky", "password": "long-enough", "role": "admin"}
    )
    assert forged.status_code == 422
    stored = await db[USERS].find_one({"_id": ObjectId(user.id)})
    assert stored is not None and stored["role"] == "user"


async def test_a_demoted_admin_loses_access_at_once(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    first, second = await make_admin(client, db), await make_admin(client, db)
    assert (await client.get("/admin/stats", headers=second.headers)).status_code == 200
    response = await client.patch(f"/admin/users/{second.id}", json={"role": "user"}, headers=first.headers)
    assert response.status_code == 200 and response.json()["role"] == "user"
    assert (await client.get("/admin/stats", headers=second.headers)).status_code == 403


async def test_list_search_and_pages(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    admin = await make_admin(client, db, "boss")
    for name in ("Carol", "carla", "dave", "Carmen", "erin"):
        await make_user(client, name)
    first = (await client.get("/admin/users", params={"q": "CAR", "limit": 2}, headers=admin.headers)).json()
    params = {"q": "CAR", "limit": 2, "cursor": first["next_cursor"]}
    rest = (await client.get("/admin/users", params=params, headers=admin.headers)).json()
    assert [u["username"] for u in first["items"] + rest["items"]] == ["carla", "Carmen", "Carol"]
    assert rest["next_cursor"] is None
    everyone = await all_pages(client, admin, "/admin/users", limit=4)
    assert [u["username"] for u in everyone] == ["boss", "carla", "Carmen", "Carol", "dave", "erin"]
    item = everyone[0]
    assert set(item) == {"_id", "username", "role", "created_at", "disabled", "last_login_at"}
    assert item["role"] == "admin" and item["last_login_at"] is not None
    for params in ({"cursor": "forged"}, {"limit": 0}, {"q": "a" * 40}, {"q": "$where"}):
        response = await client.get("/admin/users", params=params, headers=admin.headers)
        assert response.status_code in (400, 422), params


async def test_admins_create_users_even_when_registration_is_closed(
    client: AsyncClient, db: AsyncDatabase[Document]
) -> None:
    admin = await make_admin(client, db)
    body = {"username": "newhire", "password": "long-enough-1", "role": "admin"}
    response = await client.post("/admin/users", json=body, headers=admin.headers)
    assert response.status_code == 201
    assert response.json()["role"] == "admin" and "password" not in response.text and "hash" not in response.text
    await login_tokens(client, "newhire", "long-enough-1")
    assert (await client.post("/admin/users", json=body, headers=admin.headers)).status_code == 409
    for forged in ({"_id": str(ObjectId())}, {"created_at": "2020-01-01T00:00:00Z"}, {"role": "root"}, {"disabled": 1}):
        payload = {"username": "another", "password": "long-enough-1", **forged}
        assert (await client.post("/admin/users", json=payload, headers=admin.headers)).status_code == 422, forged


async def test_update_validation_and_self_protection(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    admin = await make_admin(client, db)
    user = await make_user(client)
    path = f"/admin/users/{user.id}"
    for body in ({}, {"disabled": "yes"}, {"role": "owner"}, {"password_hash": "x"}, {"username": "renamed"}):
        assert (await client.patch(path, json=body, headers=admin.headers)).status_code == 422, body
    for target in (str(ObjectId()), "not-an-id"):
        response = await client.patch(f"/admin/users/{target}", json={"disabled": True}, headers=admin.headers)
        assert response.status_code == 404
    for body in ({"disabled": True}, {"role": "user"}):
        assert (await client.patch(f"/admin/users/{admin.id}", json=body, headers=admin.headers)).status_code == 400
    assert (await client.delete(f"/admin/users/{admin.id}", headers=admin.headers)).status_code == 400


async def test_password_reset_logs_the_user_out(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    admin = await make_admin(client, db)
    user = await make_user(client)
    tokens = await login_tokens(client, user.username, user.password)
    path = f"/admin/users/{user.id}/password"
    assert (await client.post(path, json={"new_password": "short"}, headers=admin.headers)).status_code == 422
    response = await client.post(path, json={"new_password": "reset-by-admin"}, headers=admin.headers)
    assert response.status_code == 204
    assert (await client.get("/auths/me", headers=user.headers)).status_code == 401
    assert (await client.post("/auths/refresh", json={"refresh_token": tokens["refresh_token"]})).status_code == 401
    assert (
        await client.post("/auths/login", data={"username": user.username, "password": user.password})
    ).status_code == 401
    missing = await client.post(
        f"/admin/users/{ObjectId()}/password", json={"new_password": "long-enough-1"}, headers=admin.headers
    )
    assert missing.status_code == 404


async def test_delete_removes_the_user_with_sessions_messages_and_keys(
    app: FastAPI, client: AsyncClient, db: AsyncDatabase[Document]
) -> None:
    admin = await make_admin(client, db)
    user, bystander = await make_user(client), await make_user(client)
    for index in range(3):
        session = await make_session(client, user, f"s{index}")
        await post_message(client, user, session["_id"])
    keyed = {**user.headers, "Idempotency-Key": "k1"}
    assert (
        await client.post(f"/chat/sessions/{session['_id']}/messages", json={"content": "x"}, headers=keyed)
    ).status_code == 201
    kept = await make_session(client, bystander)
    await post_message(client, bystander, kept["_id"])
    await wait_for_search_index(client)  # their words counted for search
    key = (
        await client.post(
            "/auths/api-keys",
            json={"name": "k", "scopes": ["read"], "current_password": user.password},
            headers=user.headers,
        )
    ).json()

    owner = ObjectId(user.id)
    database = app.state.database
    async with contextlib.AsyncExitStack() as held:  # the indexer writes this message's words after the deletion
        for _ in range(app.state.settings.db_max_transactions):
            await held.enter_async_context(database.transaction_slots.hold("test"))
        last = {"session_id": ObjectId(session["_id"]), "user_id": owner, "role": "user", "seq": 99}
        await db[MESSAGES].insert_one({**last, "content": "written just before", "created_at": utc_now()})
        assert (await client.delete(f"/admin/users/{user.id}", headers=admin.headers)).status_code == 204
    assert await db[USERS].count_documents({"_id": owner}) == 0
    assert await db[SESSIONS].count_documents({"user_id": owner}) == 0
    assert await db[MESSAGES].count_documents({"user_id": owner}) == 0
    assert await db[API_KEYS].count_documents({"user_id": owner}) == 0
    assert await db[REFRESH_TOKENS].count_documents({"user_id": owner}) == 0
    assert await db[IDEMPOTENCY_KEYS].count_documents({"user_id": owner}) == 0, "stored responses hold messages"
    await wait_for_search_index(client)
    async with asyncio.timeout(30):  # the words of their last message, indexed after the deletion, dropped too
        while any([await db[c].count_documents({"user_id": owner}) for c in (TERM_COUNTS, TERM_COUNT_DELTAS)]):
            await asyncio.sleep(0.1)
    assert await db[MESSAGE_TERMS].count_documents({"user_id": owner}) == 0
    assert (await client.get("/auths/me", headers=user.headers)).status_code == 401
    assert (await client.get("/auths/me", headers={"Authorization": f"Bearer {key['key']}"})).status_code == 401
    assert (await client.get(f"/chat/sessions/{kept['_id']}", headers=bystander.headers)).json()["message_count"] == 1
    assert (await client.delete(f"/admin/users/{user.id}", headers=admin.headers)).status_code == 404


async def test_stats(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    admin = await make_admin(client, db)
    user = await make_user(client)
    session = await make_session(client, user)
    await post_message(client, user, session["_id"])
    response = await client.get("/admin/stats", headers=admin.headers)
    assert response.status_code == 200
    assert response.json() == {
        "users": 2,
        "sessions": 1,
        "messages": 1,
        "last_24h": {"new_users": 2, "active_users": 2, "active_sessions": 1},
    }


async def test_no_response_carries_a_password_hash(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    admin = await make_admin(client, db)
    user = await make_user(client)
    responses = [
        await client.get("/auths/me", headers=user.headers),
        await client.get("/admin/users", headers=admin.headers),
        await client.patch(f"/admin/users/{user.id}", json={"role": "user"}, headers=admin.headers),
        await client.post(
            "/admin/users", json={"username": "plainuser", "password": "long-enough-1"}, headers=admin.headers
        ),
    ]
    for response in responses:
        assert response.status_code in (200, 201)
        assert "argon2" not in response.text and "password" not in response.text and "hash" not in response.text
