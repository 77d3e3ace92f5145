"""Per-owner bounds on concurrent expensive requests (imports, exports, searches), held by one
server process: one account cannot take a worker's time, the database's or memory from
everyone else by starting many at once. Past the bound: 429 with Retry-After."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from app.core.errors import TooManyRequests

RETRY_AFTER_SECONDS = 2


class TooManyAtOnce(TooManyRequests):
    def __init__(self, kind: str) -> None:
        detail = f"You have too many {kind} requests in progress; wait for one (HEAVY_REQUESTS_PER_USER)"
        super().__init__(RETRY_AFTER_SECONDS, detail)


class OwnerSlots:
    def __init__(self, per_owner: int) -> None:
        self.per_owner = per_owner
        self._held: Counter[tuple[Hashable, str]] = Counter()

    @contextmanager
    def hold(self, owner: Hashable, kind: str) -> Iterator[None]:
        """One of `owner`'s `per_owner` slots for `kind` while the block runs; TooManyAtOnce when
        they are all taken. Synchronous check and take: concurrent requests cannot both pass."""
        key = (owner, kind)
        if self._held[key] >= self.per_owner:
            raise TooManyAtOnce(kind)
        self._held[key] += 1
        try:
            yield
        finally:
            self._held[key] -= 1
            if not self._held[key]:
                del self._held[key]
