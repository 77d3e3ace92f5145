"""Login throttling per account and address, and registration limits (OWASP API4:
unrestricted resource consumption; credential stuffing)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.core import hashing
from app.core.db import THROTTLES, Document
from tests.conftest import StartApp, client_from
from tests.factories import make_user

pytestmark = pytest.mark.password_cost  # bursts of logins meet hashing at its real cost
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


class _HashProbe:
    """Counts password checks and the most running at once (patched into app.core.hashing)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()
        original = hashing.verify_password

        def verify(password: str, stored_hash: str | None) -> tuple[bool, str | None]:
            with self._lock:
                self.calls += 1
                self.running += 1
                self.most_running = max(self.most_running, self.running)
            try:
                return original(password, stored_hash)
            finally:
                with self._lock:
                    self.running -= 1

        monkeypatch.setattr(hashing, "verify_password", verify)


async def test_concurrent_wrong_passwords_cannot_pass_the_limit(
    start_app: StartApp, db: AsyncDatabase[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8, hole 3: 60 concurrent wrong passwords answered 58 x 401 and no 429, and a right
    password inside the burst got a token. Attempts are now counted before hashing."""
    server = await start_app(
        login_max_failures=10,
        login_max_failures_per_ip=10_000,
        login_max_in_flight_per_account=1000,
        login_max_in_flight_per_ip=1000,
        password_hash_wait_seconds=30,  # a loaded machine must not turn hashing waits into 503s here
    )
    user = await make_user(server)
    probe = _HashProbe(monkeypatch)
    burst = [asyncio.create_task(_login(server, user.username, f"wrong-{i}")) for i in range(60)]
    for _ in range(200):  # until the burst has used the account's allowance
        record = await db[THROTTLES].find_one({"key": {"$regex": "^login:pair:"}})
        if record and (record["failures"] >= 10 or record.get("locked_until")):
            break
        await asyncio.sleep(0.01)
    right = await server.post("/auths/login", data={"username": user.username, "password": user.password})
    statuses = await asyncio.gather(*burst)
    assert right.status_code == 429 and "access_token" not in right.text
    assert statuses.count(401) <= 10 and statuses.count(429) >= 50
    assert set(statuses) <= {401, 429}
    assert probe.calls <= 10  # the refused ones never reached password hashing


async def test_attempts_in_flight_are_capped_per_account(start_app: StartApp) -> None:
    server = await start_app(login_max_failures=1000, login_max_failures_per_ip=10_000)
    user = await make_user(server)
    statuses = await asyncio.gather(*(_login(server, user.username, f"wrong-{i}") for i in range(20)))
    assert statuses.count(429) >= 10 and statuses.count(401) >= 1  # at most 2 at a time per account


async def test_a_burst_of_logins_is_bounded_and_other_routes_stay_up(
    start_app: StartApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8, hole 4: 80 concurrent logins for unknown users saturated hashing and another
    user's /auths/me got a 503. Hashing now runs one per core; past a short wait, 503."""
    server = await start_app(
        password_hash_concurrency=1,
        password_hash_wait_seconds=0.3,
        login_max_failures_per_ip=10_000,
        login_max_in_flight_per_ip=1000,
    )
    bystander = await make_user(server)
    probe = _HashProbe(monkeypatch)
    burst = asyncio.gather(
        *(server.post("/auths/login", data={"username": f"ghost{i}", "password": "x" * 12}) for i in range(40))
    )
    task = asyncio.ensure_future(burst)
    me_statuses = []
    while not task.done():
        me_statuses.append((await server.get("/auths/me", headers=bystander.headers)).status_code)
        await asyncio.sleep(0.02)
    responses = await task
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {401, 503} and statuses.count(503) >= 1
    busy = next(response for response in responses if response.status_code == 503)
    assert int(busy.headers["retry-after"]) >= 1 and busy.json()["detail"]
    assert probe.most_running == 1
    assert me_statuses and set(me_statuses) == {200}


async def test_a_stranger_cannot_lock_the_owner_out_but_the_account_ceiling_holds(start_app: StartApp) -> None:
    """Issue 8, hole 5: ten wrong passwords from address A locked the account for its owner at
    address B. Now A locks only (account, A); past the looser account-wide ceiling (guesses
    from many addresses) the account is locked for everyone."""
    server = await start_app(
        login_max_failures=3, login_max_failures_per_account=6, login_max_failures_per_ip=1000, login_lockout_seconds=60
    )
    user = await make_user(server)
    async with (
        client_from(server, "10.0.0.1") as attacker,
        client_from(server, "10.0.0.2") as owner,
        client_from(server, "10.0.0.3") as second_attacker,
    ):
        assert [await _login(attacker, user.username, "guess") for _ in range(4)] == [401, 401, 401, 429]
        assert await _login(attacker, user.username, user.password) == 429  # locked at A, even the right one
        assert await _login(owner, user.username, user.password) == 200  # the owner at B is not
        assert [await _login(second_attacker, user.username, "guess") for _ in range(3)] == [401] * 3
        # 6 failures from all addresses: the account-wide ceiling locks it for everyone
        locked = await owner.post("/auths/login", data={"username": user.username, "password": user.password})
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
