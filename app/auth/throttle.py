"""Password attempts (logins, password changes, API key creation) throttled per account and
address, and a registration rate limit per address, kept in MongoDB so that they hold across
server instances. The guarantees are stated in README, "Security".

An attempt is counted *before* its password is checked, against three keys, each a conditional
`$inc` in the database that only matches under the key's limit (throttle_repository):

- (account, address): LOGIN_MAX_FAILURES within LOGIN_FAILURE_WINDOW_SECONDS lock this pair
  for LOGIN_LOCKOUT_SECONDS, doubling on each repeat up to LOGIN_LOCKOUT_MAX_SECONDS. A
  stranger guessing from address A locks only A out of the account; its owner at address B
  is not affected.
- account: LOGIN_MAX_FAILURES_PER_ACCOUNT (looser) from all addresses together lock the
  account for everyone, the same way: the ceiling for guessing spread over many addresses.
- address: LOGIN_MAX_FAILURES_PER_IP over all accounts lock the address.

So of N concurrent guesses only as many as the limits leave room for reach password hashing;
the rest answer 429 with Retry-After without hashing. A success removes its attempt from the
account and address counts and clears the (account, address) record; an attempt that never
checked a password (the server was busy) is uncounted. On top, each server lets at most
LOGIN_MAX_IN_FLIGHT_PER_ACCOUNT / LOGIN_MAX_IN_FLIGHT_PER_IP attempts be checked at once.
Unknown usernames are counted like known ones.

Registrations: at most REGISTER_MAX_PER_IP per address per fixed REGISTER_WINDOW_SECONDS window.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from app.auth import throttle_repository as repository
from app.core.audit import audit
from app.core.config import Settings
from app.core.db import Document
from app.core.errors import TooManyRequests
from app.core.types import utc_now

MAX_KEY_CHARS = 128
MAX_DOUBLINGS = 20
LOCKED_OUT = "Too many failed logins; try again later"
IN_PROGRESS = "Too many login attempts in progress; try again shortly"
TOO_MANY_REGISTRATIONS = "Too many registrations from this address; try again later"


@dataclass(frozen=True)
class LoginLimits:
    pair_failures: int
    account_failures: int
    address_failures: int
    window: timedelta
    lockout: timedelta
    lockout_max: timedelta
    in_flight_per_account: int
    in_flight_per_address: int

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimits:
        return cls(
            pair_failures=settings.login_max_failures,
            account_failures=settings.login_max_failures_per_account,
            address_failures=settings.login_max_failures_per_ip,
            window=timedelta(seconds=settings.login_failure_window_seconds),
            lockout=timedelta(seconds=settings.login_lockout_seconds),
            lockout_max=timedelta(seconds=settings.login_lockout_max_seconds),
            in_flight_per_account=settings.login_max_in_flight_per_account,
            in_flight_per_address=settings.login_max_in_flight_per_ip,
        )

    @property
    def memory(self) -> timedelta:
        """How long a record outlives its last failure or lockout, so repeats grow the lockout."""
        return self.window + self.lockout_max


def _account(username: str) -> str:
    return username.lower()[:MAX_KEY_CHARS]


def _attempt_keys(limits: LoginLimits, username: str, address: str) -> list[tuple[str, str, int]]:
    """(scope, key, limit), most specific first."""
    account, address = _account(username), address[:MAX_KEY_CHARS]
    return [
        ("account_address", f"login:pair:{account}|{address}", limits.pair_failures),
        ("account", f"login:account:{account}", limits.account_failures),
        ("address", f"login:ip:{address}", limits.address_failures),
    ]


def _seconds_until(moment: datetime, now: datetime) -> int:
    return math.ceil((moment - now).total_seconds())


def _refusal(record: Document, limits: LoginLimits, now: datetime) -> TooManyRequests:
    locked_until: datetime | None = record.get("locked_until")
    if locked_until is not None and locked_until > now:
        return TooManyRequests(_seconds_until(locked_until, now), LOCKED_OUT)
    window_start: datetime = record.get("window_start") or now
    return TooManyRequests(_seconds_until(window_start + limits.window, now), LOCKED_OUT)


class Attempt:
    """One password check in progress; the caller records how it ended."""

    def __init__(self) -> None:
        self.succeeded: bool | None = None  # None: no password was checked

    def success(self) -> None:
        self.succeeded = True

    def failure(self) -> None:
        self.succeeded = False


class PasswordAttempts:
    """The throttle for password checks; one per server (it holds the in-flight counts)."""

    def __init__(self, limits: LoginLimits) -> None:
        self.limits = limits
        self._in_flight: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordAttempts:
        return cls(LoginLimits.from_settings(settings))

    @asynccontextmanager
    async def attempt(self, db: AsyncDatabase[Document], username: str, address: str) -> AsyncIterator[Attempt]:
        """Count an attempt (TooManyRequests when a limit is reached: no password is checked),
        let the caller check the password, then settle the counts by the outcome."""
        slots = [
            ("account:" + _account(username), self.limits.in_flight_per_account),
            ("address:" + address[:MAX_KEY_CHARS], self.limits.in_flight_per_address),
        ]
        if any(self._in_flight[slot] >= limit for slot, limit in slots):
            raise TooManyRequests(1, IN_PROGRESS)
        for slot, _ in slots:
            self._in_flight[slot] += 1
        try:
            now = utc_now()
            keys = _attempt_keys(self.limits, username, address)
            await self._reserve(db, keys, now)
            attempt = Attempt()
            try:
                yield attempt
            finally:
                await self._settle(db, keys, attempt, username, address)
        finally:
            for slot, _ in slots:
                self._in_flight[slot] -= 1
                if not self._in_flight[slot]:
                    del self._in_flight[slot]

    async def _reserve(self, db: AsyncDatabase[Document], keys: list[tuple[str, str, int]], now: datetime) -> None:
        """Count the attempt against each key; refused (nothing counted) when one is locked or
        full. A key already locked is refused after one read, without a write: a flood of
        attempts at a locked account or address costs the database no more than reads."""
        limits = {key: limit for _, key, limit in keys}
        for record in await repository.find_throttles(db, list(limits)):
            if repository.refuses(record, limits[record["key"]], self.limits.window, now):
                raise _refusal(record, self.limits, now)
        reserved: list[str] = []
        expires_at = now + self.limits.memory
        for _, key, limit in keys:
            refused = await repository.reserve_attempt(db, key, limit, self.limits.window, now, expires_at)
            if refused is not None:
                for earlier in reserved:
                    await repository.release_attempt(db, earlier)
                raise _refusal(refused, self.limits, now)
            reserved.append(key)

    async def _settle(
        self,
        db: AsyncDatabase[Document],
        keys: list[tuple[str, str, int]],
        attempt: Attempt,
        username: str,
        address: str,
    ) -> None:
        if attempt.succeeded is False:
            await self._lock_full_keys(db, keys, username, address)
            return
        for scope, key, _ in keys:
            if attempt.succeeded and scope == "account_address":
                await repository.clear(db, key)
            else:
                await repository.release_attempt(db, key)

    async def _lock_full_keys(
        self, db: AsyncDatabase[Document], keys: list[tuple[str, str, int]], username: str, address: str
    ) -> None:
        """After a failure: lock each key whose count reached its limit."""
        now = utc_now()
        records = {record["key"]: record for record in await repository.find_throttles(db, [k for _, k, _ in keys])}
        for scope, key, limit in keys:
            record = records.get(key)
            if record is None or record["failures"] < limit:
                continue
            doublings = min(int(record.get("lockouts", 0)), MAX_DOUBLINGS)
            lockout = min(self.limits.lockout * 2**doublings, self.limits.lockout_max)
            locked_until, expires_at = now + lockout, now + lockout + self.limits.memory
            if await repository.lock(db, key, record["window_start"], now, locked_until, expires_at):
                audit(
                    "login.locked",
                    scope=scope,
                    address=address if scope != "account" else None,
                    account=_account(username) if scope != "address" else None,
                    lockout_seconds=int(lockout.total_seconds()),
                )


async def check_registration(db: AsyncDatabase[Document], settings: Settings, address: str, now: datetime) -> None:
    """Count this registration attempt against the address's window; TooManyRequests past the limit."""
    window = settings.register_window_seconds
    bucket = int(now.timestamp()) // window
    window_end = datetime.fromtimestamp((bucket + 1) * window, UTC)
    hits = await repository.add_hit(db, f"register:ip:{address[:MAX_KEY_CHARS]}:{bucket}", window_end)
    if hits > settings.register_max_per_ip:
        raise TooManyRequests(_seconds_until(window_end, now), TOO_MANY_REGISTRATIONS)
