"""Per-key asyncio locks that exist only while someone holds or waits for them, and a bounded
number of slots for work that must not all run at once."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
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
    """At most `count` holders at a time. The others wait their turn, and owners take turns:
    a freed slot goes to the owner after the last one served (round robin), each owner's
    waiters first come first served. One owner's burst then queues behind that owner, not in
    front of everyone else: another owner's one request waits for a slot to free, not for
    the whole burst."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiting: OrderedDict[Hashable, deque[asyncio.Future[None]]] = OrderedDict()

    @asynccontextmanager
    async def hold(self, owner: Hashable, timeout: float | None = None) -> AsyncIterator[None]:
        """Hold a slot for `owner`; LockTimeout when none is given within `timeout` seconds."""
        if self._free and not self._waiting:
            self._free -= 1
        else:
            await self._wait_turn(owner, timeout)
        try:
            yield
        finally:
            self._release()

    async def _wait_turn(self, owner: Hashable, timeout: float | None) -> None:
        turn = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(owner, deque()).append(turn)
        try:
            async with asyncio.timeout(timeout):
                await turn
        except BaseException as exc:
            if turn.done() and not turn.cancelled():
                self._release()  # given just as the wait ended: passed on
            else:
                turn.cancel()
                self._forget(owner, turn)
            if isinstance(exc, TimeoutError):
                raise LockTimeout from exc
            raise

    def waiting(self, owner: Hashable) -> int:
        """How many of `owner`'s holders are waiting for a slot."""
        return len(self._waiting.get(owner, ()))

    def _forget(self, owner: Hashable, turn: asyncio.Future[None]) -> None:
        queue = self._waiting.get(owner)
        if queue is not None and turn in queue:
            queue.remove(turn)
            if not queue:
                del self._waiting[owner]

    def _release(self) -> None:
        """Give the slot to the next owner in turn (it goes to the back of the line if it has
        more waiting), or keep it free."""
        while self._waiting:
            owner, queue = next(iter(self._waiting.items()))
            turn = queue.popleft()
            if queue:
                self._waiting.move_to_end(owner)
            else:
                del self._waiting[owner]
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1
