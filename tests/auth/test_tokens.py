"""Access and refresh tokens: lifetimes, claims, rotation, reuse detection, logout, password
changes and revocation (OWASP API2: broken authentication)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from bson import ObjectId
from httpx import AsyncClient, Response
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import REFRESH_FAMILIES, REFRESH_TOKENS, REVOCATIONS, Document
from app.core.security import JWT_ALGORITHM, JWT_AUDIENCE, JWT_ISSUER
from tests.conftest import TEST_JWT_SECRET, StartApp
from tests.factories import bearer, login_tokens, make_admin, make_user
from tests.stress import scaled


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def _forge(user_id: str, **changes: object) -> str:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": user_id,
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": "forged",
        "typ": "access",
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
    }
    claims.update(changes)
    secret = str(claims.pop("secret", TEST_JWT_SECRET))
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm=JWT_ALGORITHM)


async def _me(client: AsyncClient, token: str) -> int:
    return (await client.get("/auths/me", headers=bearer(token))).status_code


async def test_login_returns_a_short_access_token_and_a_refresh_token(client: AsyncClient) -> None:
    user = await make_user(client)
    tokens = await login_tokens(client, user.username, user.password)
    assert tokens["expires_in"] == 15 * 60
    assert tokens["refresh_expires_in"] == 30 * 24 * 3600
    claims = _claims(tokens["access_token"])
    assert {"sub", "exp", "iat", "jti", "typ", "iss", "aud", "sid"} <= set(claims)
    assert claims["sub"] == user.id and claims["typ"] == "access"
    assert claims["iss"] == JWT_ISSUER and claims["aud"] == JWT_AUDIENCE


async def test_refresh_tokens_are_stored_only_as_hashes(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    user = await make_user(client)
    tokens = await login_tokens(client, user.username, user.password)
    stored = await db[REFRESH_TOKENS].find({"user_id": ObjectId(user.id)}).to_list(None)
    assert stored and all(len(doc["token_hash"]) == 64 for doc in stored)
    assert tokens["refresh_token"] not in json.dumps([str(doc) for doc in stored])
    assert all(doc["expires_at"] > datetime.now(UTC) + timedelta(days=29) for doc in stored)


async def test_bad_access_tokens_are_401(client: AsyncClient) -> None:
    """Expired, tampered, alg=none, wrong audience, issuer or type, wrong key, missing claims."""
    user = await make_user(client)
    past = datetime.now(UTC) - timedelta(hours=1)
    header, payload, signature = user.token.split(".")
    tampered_payload = base64.urlsafe_b64encode(
        json.dumps({**_claims(user.token), "sub": str(ObjectId())}).encode()
    ).rstrip(b"=")
    unsigned = jwt.encode({**_claims(user.token)}, key=None, algorithm="none")  # type: ignore[arg-type]
    bad = {
        "expired": _forge(user.id, iat=past - timedelta(minutes=5), exp=past),
        "tampered": f"{header}.{tampered_payload.decode()}.{signature}",
        "alg none": unsigned,
        "wrong audience": _forge(user.id, aud="someone-else"),
        "wrong issuer": _forge(user.id, iss="someone-else"),
        "refresh type": _forge(user.id, typ="refresh"),
        "wrong key": _forge(user.id, secret="another-secret-" + "x" * 40),
        "no jti": _forge(user.id, jti=None),
        "not an object id": _forge("admin"),
        "HS512": jwt.encode(_claims(user.token), TEST_JWT_SECRET, algorithm="HS512"),
    }
    assert await _me(client, user.token) == 200
    for label, token in bad.items():
        response = await client.get("/auths/me", headers=bearer(token))
        assert response.status_code == 401, label
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_refresh_token_is_not_an_access_token_nor_the_reverse(client: AsyncClient) -> None:
    user = await make_user(client)
    tokens = await login_tokens(client, user.username, user.password)
    assert await _me(client, tokens["refresh_token"]) == 401
    response = await client.post("/auths/refresh", json={"refresh_token": tokens["access_token"]})
    assert response.status_code == 401


async def test_refresh_rotates_and_the_old_token_stops_working(client: AsyncClient) -> None:
    user = await make_user(client)
    first = await login_tokens(client, user.username, user.password)
    response = await client.post("/auths/refresh", json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert _claims(second["access_token"])["sid"] == _claims(first["access_token"])["sid"]
    assert await _me(client, second["access_token"]) == 200
    third = await client.post("/auths/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200


async def test_reusing_a_refresh_token_revokes_its_whole_family(client: AsyncClient) -> None:
    """RFC 9700 4.14.2: a used refresh token presented again means one copy was stolen."""
    user = await make_user(client)
    stolen = await login_tokens(client, user.username, user.password)
    other_session = await login_tokens(client, user.username, user.password)
    rotated = (await client.post("/auths/refresh", json={"refresh_token": stolen["refresh_token"]})).json()

    reuse = await client.post("/auths/refresh", json={"refresh_token": stolen["refresh_token"]})
    assert reuse.status_code == 401
    assert (await client.post("/auths/refresh", json={"refresh_token": rotated["refresh_token"]})).status_code == 401
    assert await _me(client, rotated["access_token"]) == 401
    assert await _me(client, stolen["access_token"]) == 401
    # another login of the same user is another family: untouched
    assert await _me(client, other_session["access_token"]) == 200
    again = await client.post("/auths/refresh", json={"refresh_token": other_session["refresh_token"]})
    assert again.status_code == 200


async def test_refresh_validation(client: AsyncClient) -> None:
    for body in ({}, {"refresh_token": ""}, {"refresh_token": "x", "user_id": str(ObjectId())}):
        assert (await client.post("/auths/refresh", json=body)).status_code == 422, body
    assert (await client.post("/auths/refresh", json={"refresh_token": "crt_made-up"})).status_code == 401


async def test_logout_revokes_the_access_token_and_the_refresh_family(client: AsyncClient) -> None:
    user = await make_user(client)
    tokens = await login_tokens(client, user.username, user.password)
    other = await login_tokens(client, user.username, user.password)
    response = await client.post("/auths/logout", headers=bearer(tokens["access_token"]))
    assert response.status_code == 204
    assert await _me(client, tokens["access_token"]) == 401
    assert (await client.post("/auths/refresh", json={"refresh_token": tokens["refresh_token"]})).status_code == 401
    assert await _me(client, other["access_token"]) == 200
    assert (await client.post("/auths/logout", headers=bearer(tokens["access_token"]))).status_code == 401


async def test_logout_reaches_another_server_through_the_poller(client: AsyncClient, start_app: StartApp) -> None:
    other_server = await start_app()
    user = await make_user(client)
    assert await _me(other_server, user.token) == 200
    await client.post("/auths/logout", headers=user.headers)
    await _eventually_401(other_server, user.token)


async def _eventually_401(client: AsyncClient, token: str, within: float = 5.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await _me(client, token) == 401:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"still accepted after {within} s")


async def test_a_disabled_users_token_is_401_within_seconds_on_every_server(
    client: AsyncClient, db: AsyncDatabase[Document], start_app: StartApp
) -> None:
    """No database command per request: other servers learn it from the revocation poller."""
    other_server = await start_app(revocation_poll_seconds=1.0)
    admin = await make_admin(client, db)
    user = await make_user(client)
    tokens = await login_tokens(client, user.username, user.password)
    assert await _me(other_server, tokens["access_token"]) == 200

    response = await client.patch(f"/admin/users/{user.id}", json={"disabled": True}, headers=admin.headers)
    assert response.status_code == 200 and response.json()["disabled"] is True
    assert await _me(client, tokens["access_token"]) == 401  # the server that disabled: at once
    assert await _eventually_401(other_server, tokens["access_token"]) < 3.0
    assert (await client.post("/auths/refresh", json={"refresh_token": tokens["refresh_token"]})).status_code == 401
    login = await client.post("/auths/login", data={"username": user.username, "password": user.password})
    wrong = await client.post("/auths/login", data={"username": user.username, "password": "not-the-password"})
    # Issue 8, hole 10: no 403 oracle for the right password of a disabled account.
    assert login.status_code == wrong.status_code == 401 and login.json() == wrong.json()

    await client.patch(f"/admin/users/{user.id}", json={"disabled": False}, headers=admin.headers)
    await asyncio.sleep(1.1)  # a token issued in the second of the revocation counts as before it
    fresh = await login_tokens(client, user.username, user.password)
    assert await _me(client, fresh["access_token"]) == 200
    assert await _me(other_server, fresh["access_token"]) == 200


async def test_a_restarted_server_still_knows_the_revocations(client: AsyncClient, start_app: StartApp) -> None:
    user = await make_user(client)
    await client.post("/auths/logout", headers=user.headers)
    new_server = await start_app()
    assert await _me(new_server, user.token) == 401


async def test_change_password_keeps_this_session_and_ends_the_others(client: AsyncClient) -> None:
    user = await make_user(client)
    this = await login_tokens(client, user.username, user.password)
    other = await login_tokens(client, user.username, user.password)
    body = {"current_password": user.password, "new_password": "a-brand-new-one"}
    response = await client.post("/auths/password", json=body, headers=bearer(this["access_token"]))
    assert response.status_code == 204
    assert await _me(client, this["access_token"]) == 200
    assert (await client.post("/auths/refresh", json={"refresh_token": this["refresh_token"]})).status_code == 200
    assert (await client.post("/auths/refresh", json={"refresh_token": other["refresh_token"]})).status_code == 401
    assert await _me(client, other["access_token"]) == 401
    old = await client.post("/auths/login", data={"username": user.username, "password": user.password})
    assert old.status_code == 401
    await login_tokens(client, user.username, "a-brand-new-one")


async def test_change_password_checks_the_current_one_and_the_body(client: AsyncClient) -> None:
    user = await make_user(client)
    wrong = {"current_password": "not-my-password", "new_password": "a-brand-new-one"}
    response = await client.post("/auths/password", json=wrong, headers=user.headers)
    assert response.status_code == 400
    for body in (
        {"current_password": user.password, "new_password": "short"},
        {"current_password": user.password},
        {"current_password": user.password, "new_password": "long-enough-1", "user_id": str(ObjectId())},
    ):
        assert (await client.post("/auths/password", json=body, headers=user.headers)).status_code == 422, body
    ok = {"current_password": user.password, "new_password": "long-enough-1"}
    assert (await client.post("/auths/password", json=ok)).status_code == 401


async def _refresh(client: AsyncClient, refresh_token: str) -> Response:
    return await client.post("/auths/refresh", json={"refresh_token": refresh_token})


@pytest.mark.stress
async def test_a_raced_refresh_cannot_outlive_reuse_detection(
    client: AsyncClient, db: AsyncDatabase[Document], start_app: StartApp
) -> None:
    """Issue 8, hole 2: of two concurrent refreshes of one token, the winner's new refresh token
    kept working after reuse was detected (9 of 40 trials), and still minted tokens once the
    family's revocation entry had expired. Rotation is now conditional on a live family."""
    user = await make_user(client)
    winners: list[dict[str, Any]] = []
    for _ in range(scaled(15, 100)):
        tokens = await login_tokens(client, user.username, user.password)
        first, second = await asyncio.gather(
            _refresh(client, tokens["refresh_token"]), _refresh(client, tokens["refresh_token"])
        )
        assert sorted([first.status_code, second.status_code]) in ([200, 401], [401, 401])
        for response in (first, second):
            if response.status_code == 200:
                winners.append(response.json())
    assert winners
    for pair in winners:
        assert (await _refresh(client, pair["refresh_token"])).status_code == 401
        assert await _me(client, pair["access_token"]) == 401
    # Once the access-token lifetime has passed, the revocation entries are gone (TTL); a fresh
    # server knows nothing of them. The family itself stays revoked.
    await db[REVOCATIONS].delete_many({})
    later = await start_app()
    for pair in winners:
        assert (await _refresh(later, pair["refresh_token"])).status_code == 401
    live = await db[REFRESH_FAMILIES].count_documents({"user_id": ObjectId(user.id), "revoked": False})
    assert live == 1  # only make_user's own login: every raced family is revoked


async def test_token_responses_are_not_cached(client: AsyncClient) -> None:
    """Issue 8, hole 10: RFC 6749 section 5.1."""
    user = await make_user(client)
    login = await client.post("/auths/login", data={"username": user.username, "password": user.password})
    refreshed = await _refresh(client, login.json()["refresh_token"])
    for response in (login, refreshed):
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store" and response.headers["pragma"] == "no-cache"


async def test_a_login_session_has_an_absolute_lifetime(start_app: StartApp, db: AsyncDatabase[Document]) -> None:
    """Issue 8, hole 10: refreshing no longer extends a login forever."""
    server = await start_app(refresh_family_max_days=1, refresh_token_days=30)
    user = await make_user(server)
    tokens = await login_tokens(server, user.username, user.password)
    assert tokens["refresh_expires_in"] == 24 * 3600
    refreshed = (await _refresh(server, tokens["refresh_token"])).json()
    assert 0 < refreshed["refresh_expires_in"] <= 24 * 3600
    past = datetime.now(UTC) - timedelta(seconds=1)
    await db[REFRESH_FAMILIES].update_many({"user_id": ObjectId(user.id)}, {"$set": {"expires_at": past}})
    assert (await _refresh(server, refreshed["refresh_token"])).status_code == 401


async def test_rotations_are_throttled_per_family(start_app: StartApp) -> None:
    """Issue 8, hole 10: rotations were unthrottled."""
    server = await start_app(refresh_max_per_hour=3)
    user = await make_user(server)
    tokens = await login_tokens(server, user.username, user.password)
    other = await login_tokens(server, user.username, user.password)
    refresh_token = tokens["refresh_token"]
    for _ in range(3):
        response = await _refresh(server, refresh_token)
        assert response.status_code == 200
        refresh_token = response.json()["refresh_token"]
    throttled = await _refresh(server, refresh_token)
    assert throttled.status_code == 429 and 0 < int(throttled.headers["retry-after"]) <= 3600
    assert (await _refresh(server, other["refresh_token"])).status_code == 200  # another family is not


async def test_logout_everywhere_ends_every_session_and_keeps_api_keys(client: AsyncClient) -> None:
    user = await make_user(client)
    this = await login_tokens(client, user.username, user.password)
    other = await login_tokens(client, user.username, user.password)
    key_body = {"name": "kept", "scopes": ["read"], "current_password": user.password}
    key = (await client.post("/auths/api-keys", json=key_body, headers=bearer(this["access_token"]))).json()["key"]

    response = await client.post("/auths/logout-everywhere", headers=bearer(this["access_token"]))
    assert response.status_code == 204
    for tokens in (this, other):
        assert await _me(client, tokens["access_token"]) == 401
        assert (await _refresh(client, tokens["refresh_token"])).status_code == 401
    assert await _me(client, user.token) == 401  # the factory's own login too
    assert await _me(client, key) == 200, "API keys are revoked one by one, not by signing out"
    assert (await client.post("/auths/logout-everywhere", headers=bearer(key))).status_code == 403
    await login_tokens(client, user.username, user.password)  # signing in again works
