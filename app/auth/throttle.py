"""Login throttling per account and per client address, and a registration rate limit per
address, kept in MongoDB so that they hold across server instances.

Logins: LOGIN_MAX_FAILURES failed attempts for one account (LOGIN_MAX_FAILURES_PER_IP from one
address) within LOGIN_FAILURE_WINDOW_SECONDS lock it for LOGIN_LOCKOUT_SECONDS, doubling with
each repeat up to LOGIN_LOCKOUT_MAX_SECONDS. While locked every attempt answers 429 with
Retry-After, even with the right password: the check runs before any password hashing. A
successful login clears the account's record (not the address's, or an attacker with one
valid account could keep resetting it). Unknown usernames are counted like known ones.

Registrations: at most REGISTER_MAX_PER_IP per address per fixed REGISTER_WINDOW_SECONDS window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from app.auth import throttle_repository as repository
from app.core.config import Settings
from app.core.db import Document
from app.core.errors import TooManyRequests

MAX_KEY_CHARS = 128
MAX_DOUBLINGS = 20
LOCKED_OUT = "Too many failed logins; try again later"
TOO_MANY_REGISTRATIONS = "Too many registrations from this address; try again later"


@dataclass(frozen=True)
class LoginLimits:
    account_failures: int
    address_failures: int
    window: timedelta
    lockout: timedelta
    lockout_max: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimits:
        return cls(
            account_failures=settings.login_max_failures,
            address_failures=settings.login_max_failures_per_ip,
            window=timedelta(seconds=settings.login_failure_window_seconds),
            lockout=timedelta(seconds=settings.login_lockout_seconds),
            lockout_max=timedelta(seconds=settings.login_lockout_max_seconds),
        )

    @property
    def memory(self) -> timedelta:
        """How long a record outlives its last failure or lockout, so repeats grow the lockout."""
        return self.window + self.lockout_max


def _account_key(username: str) -> str:
    return "login:account:" + username.lower()[:MAX_KEY_CHARS]


def _address_key(address: str) -> str:
    return "login:ip:" + address[:MAX_KEY_CHARS]


def _seconds_until(moment: datetime, now: datetime) -> int:
    return math.ceil((moment - now).total_seconds())


async def check_login(db: AsyncDatabase[Document], username: str, address: str, now: datetime) -> bool:
    """TooManyRequests while the account or the address is locked; otherwise whether the
    account has a failure record (for `login_succeeded` to clear)."""
    records = await repository.find_throttles(db, [_account_key(username), _address_key(address)])
    locks = [record["locked_until"] for record in records if (record.get("locked_until") or now) > now]
    if locks:
        raise TooManyRequests(_seconds_until(max(locks), now), LOCKED_OUT)
    return any(record["key"] == _account_key(username) for record in records)


async def login_failed(
    db: AsyncDatabase[Document], limits: LoginLimits, username: str, address: str, now: datetime
) -> None:
    await _count_failure(db, _account_key(username), limits.account_failures, limits, now)
    await _count_failure(db, _address_key(address), limits.address_failures, limits, now)


async def _count_failure(
    db: AsyncDatabase[Document], key: str, max_failures: int, limits: LoginLimits, now: datetime
) -> None:
    record = await repository.add_failure(db, key, now, now + limits.memory)
    window_start: datetime = record["window_start"]
    if window_start <= now - limits.window:
        await repository.restart_window(db, key, window_start, now)
        return
    if record["failures"] >= max_failures:
        lockout = min(limits.lockout * 2 ** min(int(record["lockouts"]), MAX_DOUBLINGS), limits.lockout_max)
        await repository.lock(db, key, window_start, now, now + lockout, now + lockout + limits.memory)


async def login_succeeded(db: AsyncDatabase[Document], username: str) -> None:
    await repository.clear(db, _account_key(username))


async def check_registration(db: AsyncDatabase[Document], settings: Settings, address: str, now: datetime) -> None:
    """Count this registration attempt against the address's window; TooManyRequests past the limit."""
    window = settings.register_window_seconds
    bucket = int(now.timestamp()) // window
    window_end = datetime.fromtimestamp((bucket + 1) * window, UTC)
    hits = await repository.add_hit(db, f"register:ip:{address[:MAX_KEY_CHARS]}:{bucket}", window_end)
    if hits > settings.register_max_per_ip:
        raise TooManyRequests(_seconds_until(window_end, now), TOO_MANY_REGISTRATIONS)
