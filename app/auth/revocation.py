"""Revocation with no database command per request.

Access tokens are checked by signature and claims alone; what makes one stop working before
its expiry (logout, a reused refresh token, a password change, a disabled or deleted user, a
revoked API key) is written to the `revocations` collection and held in memory by every
server. A background poller reads the entries written since its last look every
REVOCATION_POLL_SECONDS (served by the created_at index), so a revocation made on one server
takes effect on all of them within about that time; the server that makes it applies it at once.

Entries expire (TTL) when nothing they revoke can still be presented: a token entry at the
token's expiry, a family or user entry one access-token lifetime after it was written (no
token issued before it outlives that, and none can be issued after it). The poller re-reads a
short overlap so that an entry written by a server whose clock lags a little is not missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from app.auth.revocations_repository import insert_revocations, live_revocations, revocations_created_since
from app.core.background import stop_within
from app.core.db import Database, Document
from app.core.types import utc_now

log = logging.getLogger(__name__)
POLL_OVERLAP = timedelta(seconds=10)
STOP_TIMEOUT_SECONDS = 5.0


class RevocationKind(StrEnum):
    TOKEN = "token"  # one access token, by jti: logout
    FAMILY = "family"  # every access token of one login session, by sid: logout, reuse, password change
    USER = "user"  # every access token issued to the user before `before`: disable, delete, reset
    API_KEY = "api_key"  # one API key, by id


@dataclass(frozen=True)
class Revocation:
    kind: RevocationKind
    key: str
    expires_at: datetime
    before: datetime | None = None  # USER only

    def to_document(self, now: datetime) -> Document:
        return {
            "kind": self.kind.value,
            "key": self.key,
            "before": self.before,
            "created_at": now,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_document(cls, document: Document) -> Revocation | None:
        try:
            kind = RevocationKind(document["kind"])
            return cls(kind, str(document["key"]), document["expires_at"], document.get("before"))
        except (KeyError, ValueError):
            log.warning("ignoring a malformed revocation entry", extra={"id": str(document.get("_id"))})
            return None


class RevocationCache:
    """What is revoked, in memory; checks are dictionary look-ups."""

    def __init__(self) -> None:
        self._entries: dict[tuple[RevocationKind, str], Revocation] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def apply(self, revocation: Revocation) -> None:
        slot = (revocation.kind, revocation.key)
        known = self._entries.get(slot)
        if known is None or _later(revocation, known):
            self._entries[slot] = revocation

    def token_revoked(self, user_id: str, token_id: str, family_id: str | None, issued_at: datetime) -> bool:
        if (RevocationKind.TOKEN, token_id) in self._entries:
            return True
        if family_id is not None and (RevocationKind.FAMILY, family_id) in self._entries:
            return True
        return self.user_revoked_since(user_id, issued_at)

    def user_revoked_since(self, user_id: str, instant: datetime) -> bool:
        """The user's credentials were revoked after `instant` (a token's iat, which has whole
        seconds, or when an API key was last checked against the database)."""
        entry = self._entries.get((RevocationKind.USER, user_id))
        return entry is not None and entry.before is not None and instant < entry.before

    def api_key_revoked(self, key_id: str) -> bool:
        return (RevocationKind.API_KEY, key_id) in self._entries

    def prune(self, now: datetime) -> None:
        for slot in [slot for slot, entry in self._entries.items() if entry.expires_at <= now]:
            del self._entries[slot]


def _later(new: Revocation, known: Revocation) -> bool:
    if new.before is not None and (known.before is None or new.before > known.before):
        return True
    return new.expires_at > known.expires_at and new.before == known.before


async def revoke(database: Database, cache: RevocationCache, revocations: list[Revocation]) -> None:
    """Record revocations for every server, and apply them here at once."""
    await insert_revocations(database.db, [revocation.to_document(utc_now()) for revocation in revocations])
    for revocation in revocations:
        cache.apply(revocation)


class RevocationPoller:
    def __init__(self, db: AsyncDatabase[Document], cache: RevocationCache) -> None:
        self.db = db
        self.cache = cache
        self._seen_until: datetime | None = None
        self._failing = False

    async def poll(self) -> None:
        """Read the entries written since the last poll (all live entries the first time)."""
        now = utc_now()
        if self._seen_until is None:
            documents = await live_revocations(self.db, now)
        else:
            documents = await revocations_created_since(self.db, self._seen_until - POLL_OVERLAP)
        for document in documents:
            revocation = Revocation.from_document(document)
            if revocation is not None:
                self.cache.apply(revocation)
        self._seen_until = now
        self.cache.prune(now)

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Poll every `interval` seconds until `stop` is set (never cancelled mid-command)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if stop.is_set():
                return
            try:
                await self.poll()
            except PyMongoError as exc:
                if not self._failing:
                    log.warning("cannot read revocations; retrying", extra={"error": type(exc).__name__})
                self._failing = True
            else:
                if self._failing:
                    log.info("reading revocations again")
                self._failing = False


@contextlib.asynccontextmanager
async def watch_revocations(database: Database, interval: float) -> AsyncIterator[RevocationCache]:
    """A cache loaded with every live revocation before the app serves, kept fresh until exit."""
    cache = RevocationCache()
    poller = RevocationPoller(database.db, cache)
    await poller.poll()
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(interval, stop), name="revocation-poller")
    try:
        yield cache
    finally:
        stop.set()
        await stop_within(task, STOP_TIMEOUT_SECONDS)
