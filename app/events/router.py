"""Server-Sent Events: the user's stream of everything that changes in their chat, and one
session's stream of messages (resumable from any seq).

The keepalive comment every 15 s comes from FastAPI's SSE support; the first thing sent is a
comment with `retry:`, so a client knows it is subscribed from that point on. A stream ends
when its credentials stop being valid (expiry, logout, revocation): the client reconnects
with fresh ones; and at once when the server stops (SIGTERM): the client reconnects, to
another instance or this one once back, and resumes with Last-Event-ID. A disconnected
client's subscription is dropped at once (when the request's dependencies close).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from bson import ObjectId
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app.assistant.service import streaming_reply
from app.auth.dependencies import CurrentUser, Revocations
from app.auth.principal import AuthenticatedUser
from app.auth.revocation import RevocationCache
from app.chat import history
from app.chat import service as chat
from app.chat.dependencies import OwnedSession
from app.core.changes import Change, ChangeHub, Closed, Reset, Subscription
from app.core.db import DatabaseDep
from app.core.errors import UNAVAILABLE_ERRORS, BadRequest
from app.core.responses import error_responses
from app.core.types import utc_now
from app.events import render

log = logging.getLogger(__name__)
RETRY_MS = 3000
AUTH_CHECK_SECONDS = 5.0
REPLAY_PAGE = history.MESSAGE_PAGE  # bounded in bytes
LAST_EVENT_ID_MAX = 512

router = APIRouter(tags=["events"], responses=error_responses(400, 401, 403, 503))
LastEventId = Annotated[
    str | None, Header(max_length=LAST_EVENT_ID_MAX, description="The id of the last event you received")
]


async def _hub(request: Request) -> ChangeHub:
    hub: ChangeHub = request.app.state.change_hub
    return hub


Hub = Annotated[ChangeHub, Depends(_hub)]
CONNECTED = ServerSentEvent(comment="connected", retry=RETRY_MS)


async def _user_subscription(
    user: CurrentUser, hub: Hub, last_event_id: LastEventId = None
) -> AsyncIterator[Subscription]:
    """Taken before the response starts, so that past EVENT_STREAMS_PER_USER the answer is a
    429; dropped when the stream ends, however it ends (request-scoped dependency)."""
    async with _held(hub, hub.subscribe(user.id, last_event_id)) as subscription:
        yield subscription


@asynccontextmanager
async def _held(hub: ChangeHub, subscription: Subscription) -> AsyncIterator[Subscription]:
    try:
        yield subscription
    finally:
        hub.unsubscribe(subscription)


@router.get("/chat/events", response_class=EventSourceResponse, responses=error_responses(429))
async def user_events(
    user: CurrentUser, revocations: Revocations, subscription: Annotated[Subscription, Depends(_user_subscription)]
) -> AsyncIterator[ServerSentEvent]:
    """Your `session.created`, `session.updated`, `session.deleted` and `message.created`
    events; `data` is the REST response model. With `Last-Event-ID`: first what you missed,
    or one `reset` event when that is no longer known (reload over REST, then reconnect).
    429 past EVENT_STREAMS_PER_USER open streams on this server."""
    yield CONNECTED
    async for item in _live(subscription, user, revocations):
        if isinstance(item, Reset):
            yield render.RESET
            return
        event = render.user_event(item)
        if event is not None:
            yield event


async def _resume_after(
    session: OwnedSession,
    after_seq: Annotated[int | None, Query(ge=0, description="Replay the stored messages after this seq")] = None,
    last_event_id: LastEventId = None,
) -> int:
    """The seq to start after: `after_seq`, else `Last-Event-ID`, else the newest (live only).
    A dependency, so that a bad value is a 400 before the stream starts."""
    if after_seq is not None:
        return after_seq
    if last_event_id is None:
        return int(session["message_count"])
    if not (last_event_id.isascii() and last_event_id.isdigit()) or len(last_event_id) > 18:
        raise BadRequest("Last-Event-ID must be a message seq on this stream")
    return int(last_event_id)


async def _session_subscription(session: OwnedSession, user: CurrentUser, hub: Hub) -> AsyncIterator[Subscription]:
    """Like _user_subscription, once the session is known to be the caller's."""
    async with _held(hub, hub.subscribe(user.id)) as subscription:
        yield subscription


@router.get(
    "/chat/sessions/{session_id}/events", response_class=EventSourceResponse, responses=error_responses(404, 429)
)
async def session_events(
    session: OwnedSession,
    user: CurrentUser,
    database: DatabaseDep,
    revocations: Revocations,
    subscription: Annotated[Subscription, Depends(_session_subscription)],
    sent: Annotated[int, Depends(_resume_after)],
) -> AsyncIterator[ServerSentEvent]:
    """The session's new messages, `message.created` with id = seq, and `message.updated` as
    a reply the server writes grows (on connecting, a reply still being written comes first
    as it is now). With `after_seq` (or
    `Last-Event-ID`), first every stored message after it, then live: no gap, no repeat.
    429 past EVENT_STREAMS_PER_USER open streams on this server. When the session's messages
    are cleared, the stream goes on with the new seqs from 1."""
    session_id: ObjectId = session["_id"]
    # Subscribed before the replay (a dependency): nothing can fall between the two.
    yield CONNECTED
    try:
        newest = await chat.message_count(database, session_id, user.id)
        while newest is not None and sent < newest:
            until = min(sent + REPLAY_PAGE, newest)
            for message in await chat.messages_between(database, session_id, sent, until):
                yield render.message_event(message)
            sent = until
        for reply in await streaming_reply(database, session_id):
            if reply.seq <= sent:  # replayed above otherwise
                yield render.message_update_event(reply)
    except UNAVAILABLE_ERRORS:
        log.warning("a session stream's replay failed: the database did not answer", extra={"seq": sent})
        yield render.REPLAY_FAILED
        return
    async for item in _live(subscription, user, revocations):
        if isinstance(item, Reset):
            yield render.RESET
            return
        if render.session_deleted(item, session_id):
            return
        count = render.session_message_count(item, session_id)
        if count is not None and count < sent:
            sent = count  # its messages were cleared: seqs start again from 1
        numbered = render.session_message(item, session_id)
        if numbered is not None and numbered[0] > sent:
            sent, event = numbered
            yield event
        updated = render.session_message_update(item, session_id)
        if updated is not None:
            yield updated


async def _live(
    subscription: Subscription, user: AuthenticatedUser, revocations: RevocationCache
) -> AsyncIterator[Change | Reset]:
    """The subscription's items while the caller's credentials stay valid."""
    since = utc_now()
    while _still_valid(user, revocations, since):
        try:
            item = await asyncio.wait_for(subscription.next(), AUTH_CHECK_SECONDS)
        except TimeoutError:
            continue
        if isinstance(item, Closed):
            return  # the server is stopping
        yield item


def _still_valid(user: AuthenticatedUser, revocations: RevocationCache, since: datetime) -> bool:
    """Checked at least every AUTH_CHECK_SECONDS: an access token or an API key until it
    expires or is revoked (or its user is disabled or deleted)."""
    if revocations.user_revoked_since(str(user.id), since):
        return False
    if user.expires_at is not None and user.expires_at <= utc_now():
        return False
    if user.via_api_key:
        return not revocations.api_key_revoked(user.token_id)
    return not revocations.token_revoked(str(user.id), user.token_id, user.family_id, since)
