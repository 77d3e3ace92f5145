"""The in-memory fan-out of database changes to the subscribers of each owner.

One source per process feeds it (the change stream, app.core.change_stream, or on a server
without change streams the writes of this process); every open event stream is a
`Subscription` of one owner. Domain-agnostic: a change is a collection, an operation and a
full document with an owner field; what it means is decided by whoever reads it.

Memory is bounded four times: an owner holds at most `streams_per_owner` subscriptions, the
process at most `max_streams` (so that streams cannot take every connection, and the health
checks and everyone else's requests are still answered), each subscription holds at most
`queue_size` changes (a reader that falls further behind is reset: its queue is dropped and it
is told to resync), and the replay buffer holds the last `buffer_size` changes, and no more
than `buffer_bytes` of them (their documents' BSON size), in order, so that a client
reconnecting with the id of the last change it saw gets exactly the ones of its owner that
came after it (or, past the buffer, a reset).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

import bson
from bson.errors import InvalidDocument

from app.core.errors import ServerBusy, TooManyRequests

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 1000
DEFAULT_BUFFER_SIZE = 10_000
DEFAULT_STREAMS_PER_OWNER = 20
DEFAULT_MAX_STREAMS = 1000
DEFAULT_BUFFER_BYTES = 64 * 1024 * 1024
UNSIZED_BYTES = 16 * 1024 * 1024  # a document BSON cannot encode counts as the largest there is
Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    token: str  # the event id: the change stream's resume token, or a local counter
    collection: str
    operation: str  # insert, update or replace
    document: Document
    owner: Hashable


class Reset:
    """Sent in place of changes that can no longer be delivered: the reader resyncs."""


RESET = Reset()


class Closed:
    """Sent when the server stops: the stream ends at once, and its client reconnects (to
    another instance, or this one once it is back) with the id of the last event it got."""


CLOSED = Closed()


class TooManyStreams(TooManyRequests):
    detail = "You have too many event streams open on this server; close one (EVENT_STREAMS_PER_USER)"

    def __init__(self) -> None:
        super().__init__(retry_after_seconds=5)


class ServerStreamsFull(ServerBusy):
    detail = "This server holds as many event streams as it may (EVENT_STREAMS_MAX); try again shortly"

    def __init__(self) -> None:
        super().__init__(retry_after_seconds=5)


@dataclass(eq=False)
class Subscription:
    owner: Hashable
    queue: asyncio.Queue[Change | Reset | Closed]
    closed: bool = field(default=False)

    async def next(self) -> Change | Reset | Closed:
        return await self.queue.get()


class ChangeHub:
    def __init__(
        self,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        streams_per_owner: int = DEFAULT_STREAMS_PER_OWNER,
        max_streams: int = DEFAULT_MAX_STREAMS,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    ) -> None:
        self.queue_size = queue_size
        self.streams_per_owner = streams_per_owner
        self.max_streams = max_streams
        self.buffer_size = buffer_size
        self.buffer_bytes = buffer_bytes
        self._subscribers: dict[Hashable, set[Subscription]] = {}
        self._subscriber_count = 0
        self._recent: deque[tuple[int, Change, int]] = deque()
        self._recent_bytes = 0
        self._positions: dict[str, int] = {}
        self._numbers = itertools.count(1)
        self._local_tokens = itertools.count(1)
        self.stopping = False

    @property
    def subscriber_count(self) -> int:
        return self._subscriber_count

    @property
    def buffered_bytes(self) -> int:
        return self._recent_bytes

    def subscribe(self, owner: Hashable, after_token: str | None = None) -> Subscription:
        """A new subscription of `owner`. With `after_token`: first the owner's buffered changes
        after it, or one reset when it is not in the buffer (too old, or never seen here).
        Synchronous, so that nothing published can fall between the replay and the live part
        (and concurrent subscribes cannot pass the owner's limit: TooManyStreams)."""
        if len(self._subscribers.get(owner, ())) >= self.streams_per_owner:
            raise TooManyStreams()
        if self._subscriber_count >= self.max_streams:
            raise ServerStreamsFull()
        subscription = Subscription(owner, asyncio.Queue(self.queue_size))
        if self.stopping:
            subscription.closed = True
            subscription.queue.put_nowait(CLOSED)
            return subscription
        if after_token is not None:
            replay = self._after(owner, after_token)
            if replay is None:
                subscription.queue.put_nowait(RESET)
            else:
                for change in replay:
                    self._deliver(subscription, change)
        if not subscription.closed:
            self._subscribers.setdefault(owner, set()).add(subscription)
            self._subscriber_count += 1
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.closed = True
        owned = self._subscribers.get(subscription.owner)
        if owned is not None and subscription in owned:
            owned.discard(subscription)
            self._subscriber_count -= 1
            if not owned:
                del self._subscribers[subscription.owner]

    def publish(self, change: Change) -> None:
        number = next(self._numbers)
        size = _bson_size(change.document)
        self._recent.append((number, change, size))
        self._recent_bytes += size
        self._positions[change.token] = number
        while len(self._recent) > self.buffer_size or (self._recent_bytes > self.buffer_bytes and self._recent):
            _, evicted, evicted_size = self._recent.popleft()
            self._recent_bytes -= evicted_size
            self._positions.pop(evicted.token, None)
        for subscription in list(self._subscribers.get(change.owner, ())):
            self._deliver(subscription, change)

    def publish_local(self, collection: str, operation: str, document: Document, owner: Hashable) -> None:
        """For a server without change streams: this process's own writes, with local ids."""
        self.publish(Change(f"local-{next(self._local_tokens)}", collection, operation, document, owner))

    def reset_all(self) -> None:
        """History was lost (the change stream could not resume): every subscriber resyncs,
        and no old id can be resumed from any more."""
        self._recent.clear()
        self._recent_bytes = 0
        self._positions.clear()
        for owned in list(self._subscribers.values()):
            for subscription in list(owned):
                self._reset(subscription)

    def close_all(self) -> None:
        """The server is stopping: every subscription ends once it has read what it holds,
        and any new one ends at once (its client comes back with its last event id)."""
        self.stopping = True
        for owned in list(self._subscribers.values()):
            for subscription in list(owned):
                self.unsubscribe(subscription)
                if subscription.queue.full():  # its client resumes from the last change it read
                    while not subscription.queue.empty():
                        subscription.queue.get_nowait()
                subscription.queue.put_nowait(CLOSED)

    def _after(self, owner: Hashable, token: str) -> list[Change] | None:
        number = self._positions.get(token)
        if number is None or not self._recent:
            return None
        first = self._recent[0][0]
        return [change for _, change, _ in _from(self._recent, number - first + 1) if change.owner == owner]

    def _deliver(self, subscription: Subscription, change: Change) -> None:
        if subscription.closed:
            return
        try:
            subscription.queue.put_nowait(change)
        except asyncio.QueueFull:
            log.warning("an event stream reader fell too far behind; it is reset", extra={"owner": str(change.owner)})
            self._reset(subscription)

    def _reset(self, subscription: Subscription) -> None:
        """Drop what the subscription holds, leave it one reset to read, and stop feeding it."""
        self.unsubscribe(subscription)
        while not subscription.queue.empty():
            subscription.queue.get_nowait()
        subscription.queue.put_nowait(RESET)


def _from(recent: deque[tuple[int, Change, int]], start: int) -> Iterator[tuple[int, Change, int]]:
    return itertools.islice(recent, start, None)


def _bson_size(document: Document) -> int:
    try:
        return len(bson.encode(document))
    except (InvalidDocument, TypeError):
        return UNSIZED_BYTES
