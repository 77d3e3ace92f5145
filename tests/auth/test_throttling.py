"""Login throttling per account and address, and registration limits (OWASP API4:
unrestricted resource consumption; credential stuffing)."""

from __future__ import annotations

import asyncio

from httpx import AsyncClient

from tests.conftest import StartApp
from tests.factories import make_user

LIMITS = {"login_max_failures": 3, "login_lockout_seconds": 60, "login_max_failures_per_ip": 1000}


async def _login(client: AsyncClient, username: str, password: str) -> int:
    response = await client.post("/auths/login", data={"username": username, "password": password})
    return response.status_code


async def test_an_account_is_locked_after_repeated_failures_even_with_the_right_password(
    client: AsyncClient, start_app: StartApp
) -> None:
    server = await start_app(**LIMITS)
    user = await make_user(server)
    assert [await _login(server, user.username, "wrong-password") for _ in range(3)] == [401] * 3
    locked = await server.post("/auths/login", data={"username": user.username, "password": user.password})
    assert locked.status_code == 429
    assert 55 <= int(locked.headers["retry-after"]) <= 60
    assert locked.json() == {"detail": "Too many failed logins; try again later"}
    # another server sees the same lock: it is kept in the database
    assert await _login(client, user.username.upper(), user.password) == 429
    # other accounts are not affected
    other = await make_user(server)
    assert await _login(server, other.username, other.password) == 200


async def test_a_success_resets_the_count(start_app: StartApp) -> None:
    server = await start_app(**LIMITS)
    user = await make_user(server)
    for _ in range(2):
        assert await _login(server, user.username, "wrong-password") == 401
    assert await _login(server, user.username, user.password) == 200
    for _ in range(2):
        assert await _login(server, user.username, "wrong-password") == 401
    assert await _login(server, user.username, user.password) == 200


async def test_the_lock_ends_and_grows_on_repeat(start_app: StartApp) -> None:
    server = await start_app(**{**LIMITS, "login_lockout_seconds": 1})
    user = await make_user(server)
    for _ in range(3):
        await _login(server, user.username, "wrong-password")
    first = await server.post("/auths/login", data={"username": user.username, "password": user.password})
    assert first.status_code == 429 and first.headers["retry-after"] == "1"
    await asyncio.sleep(1.1)
    for _ in range(3):
        assert await _login(server, user.username, "wrong-password") == 401
    second = await server.post("/auths/login", data={"username": user.username, "password": user.password})
    assert second.status_code == 429 and second.headers["retry-after"] == "2"
    await asyncio.sleep(2.1)
    assert await _login(server, user.username, user.password) == 200


async def test_unknown_usernames_are_throttled_alike(start_app: StartApp) -> None:
    server = await start_app(**LIMITS)
    statuses = [await _login(server, "nobody-here", "wrong-password") for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


async def test_an_address_is_throttled_across_accounts(start_app: StartApp) -> None:
    server = await start_app(login_max_failures=100, login_max_failures_per_ip=4, login_lockout_seconds=60)
    user = await make_user(server)
    statuses = [await _login(server, f"victim{i}", "wrong-password") for i in range(4)]
    assert statuses == [401] * 4
    response = await server.post("/auths/login", data={"username": user.username, "password": user.password})
    assert response.status_code == 429 and "retry-after" in response.headers


async def test_registration_is_rate_limited_per_address(start_app: StartApp) -> None:
    server = await start_app(register_max_per_ip=2, register_window_seconds=3600)
    for i in range(2):
        body = {"username": f"newcomer{i}", "password": "long-enough-1"}
        assert (await server.post("/auths/register", json=body)).status_code == 201
    response = await server.post("/auths/register", json={"username": "newcomer9", "password": "long-enough-1"})
    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= 3600


async def test_closed_registration_is_403(start_app: StartApp) -> None:
    server = await start_app(allow_registration=False)
    response = await server.post("/auths/register", json={"username": "newcomer", "password": "long-enough-1"})
    assert response.status_code == 403
