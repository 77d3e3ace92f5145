"""Idempotent creates: a client sends `Idempotency-Key` with a POST and may retry it safely.

Modelled on the IETF Idempotency-Key draft and Stripe. A key is scoped to the authenticated
user and kept for RETENTION (a TTL index). Its record is claimed before the work starts
(marking it in flight for LEASE) and completed with the response (status and exact body) in
the same transaction as the work's writes, so after a crash at any point a retry either
replays the stored response or does the work for the first time: never twice.

- A retry of a completed request (same method, path and body) gets the stored response with
  `Idempotent-Replayed: true`.
- The same key with a different request: 422. A retry while the first is in flight: 409 with
  Retry-After. A claim whose request crashed expires after LEASE; the next retry takes it over
  (a takeover replaces the record, so the first request, should it still be running, fails to
  complete its own record and its transaction is rolled back).
- A request that is refused (validation, 404, 409, ...) releases its claim: the key can be
  reused.
- Fingerprints are HMACs keyed by the server secret, and a response holding a secret is kept
  sealed (see replay_secrets.py). One that fails otherwise (the database timed out, perhaps after committing) keeps it
  until its lease runs out; the retry then replays or does the work, whichever is true.

On a standalone MongoDB (no transactions) the record is completed right after the work: a crash
between the two lets a retry repeat the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from bson import Binary, ObjectId
from fastapi import Depends, Header, Request
from fastapi.responses import Response
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from app.core.db import IDEMPOTENCY_KEYS, Database, Document
from app.core.errors import AppError, BadRequest, Conflict, UnprocessableContent
from app.core.replay_secrets import ReplaySecrets
from app.core.transactions import run_in_transaction
from app.core.types import utc_now

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
RETENTION = timedelta(hours=24)
LEASE = timedelta(seconds=10)
_VALID_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")


class KeyReused(UnprocessableContent):
    detail = "This Idempotency-Key was used for a different request"

    def __init__(self) -> None:
        super().__init__(loc=("header", HEADER))


class InFlight(Conflict):
    detail = "A request with this Idempotency-Key is still in progress; retry shortly"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__()
        self.headers = {"Retry-After": str(max(1, retry_after_seconds))}


@dataclass(frozen=True)
class IdempotentRequest:
    key: str
    fingerprint: str  # of the method, the path and the body
    secrets: ReplaySecrets


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: str  # JSON text, replayed byte for byte
    replayed: bool = False

    def to_response(self) -> Response:
        headers = {REPLAYED_HEADER: "true"} if self.replayed else None
        return Response(self.body, self.status_code, headers=headers, media_type="application/json")


async def idempotent_request(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description="1-255 printable ASCII characters: a retry with the same key and body is answered "
            "from the first response, never done twice (kept 24 hours)",
        ),
    ] = None,
) -> IdempotentRequest | None:
    if key is None:
        return None
    if not _VALID_KEY.match(key):
        raise BadRequest("Idempotency-Key must be 1-255 printable ASCII characters")
    secrets: ReplaySecrets = request.app.state.replay_secrets
    fingerprint = secrets.fingerprint(request.method, request.url.path, await request.body())
    return IdempotentRequest(key, fingerprint, secrets)


IdempotencyKey = Annotated[IdempotentRequest | None, Depends(idempotent_request)]
Work = Callable[[AsyncClientSession | None], Awaitable[StoredResponse]]


async def run_once(
    database: Database,
    user_id: ObjectId,
    request: IdempotentRequest | None,
    work: Work,
    serialize_on: Hashable,
    transactional: bool = True,
    sealed: bool = False,
    wait: float | None = None,
) -> StoredResponse:
    """Do `work` (in a transaction, unless `transactional` is false and there is no key) at
    most once per key; a retry gets the stored response back (kept `sealed` when it holds a
    secret). `wait`: run_in_transaction's."""
    if request is None:
        if transactional:
            return await run_in_transaction(database, work, serialize_on, user_id, wait=wait)
        return await work(None)
    claim = await _claim(database.db, user_id, request)
    if isinstance(claim, StoredResponse):
        return claim

    async def work_and_complete(session: AsyncClientSession | None) -> StoredResponse:
        response = await work(session)
        if not await _complete(database.db, claim, _stored_fields(request, response, sealed), session):
            raise InFlight(1)  # taken over after our lease ran out: the retry does the work
        return response

    try:
        return await run_in_transaction(database, work_and_complete, serialize_on, user_id, wait=wait)
    except AppError:
        # The work refused (404, 409, ...) and its transaction was rolled back. Any other error
        # may have come after a commit (an unknown result): the claim is then left to expire.
        await asyncio.shield(_release(database.db, claim))
        raise


async def _claim(
    db: AsyncDatabase[Document], user_id: ObjectId, request: IdempotentRequest
) -> ObjectId | StoredResponse:
    """The id of our in-flight record, or the stored response of a completed request."""
    for _ in range(3):
        now = utc_now()
        try:
            result = await db[IDEMPOTENCY_KEYS].insert_one(_in_flight(user_id, request, now))
        except DuplicateKeyError:
            pass
        else:
            record_id: ObjectId = result.inserted_id
            return record_id
        existing = await db[IDEMPOTENCY_KEYS].find_one({"user_id": user_id, "key": request.key})
        if existing is None:  # expired or released since the insert failed: try again
            continue
        if existing["fingerprint"] != request.fingerprint:
            raise KeyReused()
        if existing.get("status_code") is not None:
            return _replay(request, existing)
        lease_until: datetime = existing["lease_until"]
        if lease_until > now:
            raise InFlight(math.ceil((lease_until - now).total_seconds()))
        taken = await _take_over(db, existing, user_id, request, now)
        if taken is not None:
            return taken
    raise InFlight(1)


async def _take_over(
    db: AsyncDatabase[Document], stale: Document, user_id: ObjectId, request: IdempotentRequest, now: datetime
) -> ObjectId | None:
    """Replace a record whose request crashed; None when another retry replaced it first."""
    deleted = await db[IDEMPOTENCY_KEYS].delete_one({"_id": stale["_id"]})
    if deleted.deleted_count != 1:
        return None
    try:
        result = await db[IDEMPOTENCY_KEYS].insert_one(_in_flight(user_id, request, now))
    except DuplicateKeyError:
        return None
    record_id: ObjectId = result.inserted_id
    return record_id


def _in_flight(user_id: ObjectId, request: IdempotentRequest, now: datetime) -> Document:
    return {
        "user_id": user_id,
        "key": request.key,
        "fingerprint": request.fingerprint,
        "status_code": None,
        "body": None,
        "created_at": now,
        "lease_until": now + LEASE,
        "expires_at": now + RETENTION,
    }


def _stored_fields(request: IdempotentRequest, response: StoredResponse, sealed: bool) -> Document:
    if not sealed:
        return {"status_code": response.status_code, "body": response.body}
    sealed_body = request.secrets.seal(request.key, request.fingerprint, response.body)
    return {"status_code": response.status_code, "sealed_body": Binary(sealed_body)}


def _replay(request: IdempotentRequest, record: Document) -> StoredResponse:
    if record.get("sealed_body") is None:
        return StoredResponse(record["status_code"], record["body"], replayed=True)
    body = request.secrets.unseal(request.key, request.fingerprint, record["sealed_body"])
    if body is None:  # sealed under another server secret: not this request's to read
        raise KeyReused()
    return StoredResponse(record["status_code"], body, replayed=True)


async def _complete(
    db: AsyncDatabase[Document], record_id: ObjectId, fields: Document, session: AsyncClientSession | None
) -> bool:
    """Store the response on our record; False when the record is no longer ours."""
    result = await db[IDEMPOTENCY_KEYS].update_one({"_id": record_id}, {"$set": fields}, session=session)
    return result.matched_count == 1


async def _release(db: AsyncDatabase[Document], record_id: ObjectId) -> None:
    """Forget a claim whose request was refused, so that the key may be used again. Best
    effort: a record left behind (database down) stops mattering when its lease runs out."""
    with contextlib.suppress(PyMongoError):
        await db[IDEMPOTENCY_KEYS].delete_one({"_id": record_id})


async def forget_user(db: AsyncDatabase[Document], user_id: ObjectId) -> None:
    """Delete a user's records (their stored responses hold what they wrote)."""
    await db[IDEMPOTENCY_KEYS].delete_many({"user_id": user_id})
