"""Per-key asyncio locks that exist only while someone holds or waits for them, and a bounded
number of slots for work that must not all run at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class LockTimeout(Exception):
    """The lock could not be had in time."""


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable, timeout: float | None = None) -> AsyncIterator[None]:
        """Hold the key's lock; LockTimeout when it cannot be had within `timeout` seconds."""
        lock, holders = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, holders + 1)
        try:
            try:
                async with asyncio.timeout(timeout):
                    await lock.acquire()
            except TimeoutError as exc:
                raise LockTimeout from exc
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, holders = self._locks[key]
            if holders == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, holders - 1)

    def __len__(self) -> int:
        return len(self._locks)


class Slots:
    """At most `count` holders at a time; the others wait their turn, first come first served."""

    def __init__(self, count: int) -> None:
        self._semaphore = asyncio.Semaphore(count)

    @asynccontextmanager
    async def hold(self, timeout: float | None = None) -> AsyncIterator[None]:
        """Hold a slot; LockTimeout when none is free within `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self._semaphore.acquire()
        except TimeoutError as exc:
            raise LockTimeout from exc
        try:
            yield
        finally:
            self._semaphore.release()
