"""Password hashing off the event loop, at most one hash per core at a time.

Argon2 is meant to be expensive: unbounded, a burst of logins (even for unknown users) fills
every worker thread and starves the database driver and every other route. Here a hash waits
at most `max_wait` seconds for a free slot; past that the request answers 503 with Retry-After
(`ServerBusy`), and the rest of the server keeps answering.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import TypeVar

from app.core.config import Settings
from app.core.errors import ServerBusy
from app.core.security import hash_password, verify_password

T = TypeVar("T")
BUSY = "The server is busy checking passwords; try again shortly"


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class PasswordHashing:
    def __init__(self, slots: int, max_wait: float) -> None:
        self.slots = slots
        self.max_wait = max_wait
        self._semaphore = asyncio.Semaphore(slots)
        self.running = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordHashing:
        return cls(settings.password_hash_concurrency or available_cores(), settings.password_hash_wait_seconds)

    async def _run(self, work: Callable[..., T], *args: object) -> T:
        try:
            async with asyncio.timeout(self.max_wait):
                await self._semaphore.acquire()
        except TimeoutError as exc:
            raise ServerBusy(max(1, round(self.max_wait)), BUSY) from exc
        self.running += 1
        try:
            return await asyncio.to_thread(work, *args)
        finally:
            self.running -= 1
            self._semaphore.release()

    async def hash(self, password: str) -> str:
        return await self._run(hash_password, password)

    async def verify(self, password: str, stored_hash: str | None) -> tuple[bool, str | None]:
        """(matches, a new hash when the stored one is outdated); against a dummy hash when None."""
        return await self._run(verify_password, password, stored_hash)
