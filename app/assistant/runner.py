"""The generation runner: background tasks that outlive the request that asked for a reply.

Each generation streams from the upstream into memory, and a writer beside it stores the text
so far into the stored message at most every FLUSH_SECONDS (and the runner writes it once more
at the end, with the final status). The process's progress writes are capped at
PROGRESS_WRITES_PER_SECOND in all: with more replies than that allows at FLUSH_SECONDS, each
is written less often (a watcher elsewhere sees it grow in longer steps; its own streamed
response and this instance's followers read it from memory, token by token). The writer is
stopped between its writes, never cancelled in one, so that no progress write can land after
the final one.

One supervisor per process, while it generates anything, does for all its replies at once:
- renews their leases every RENEW_SECONDS (one write), so that a process that dies leaves
  leases that run out: any instance's sweeper then marks those replies failed (`interrupted`);
- reads their cancel flags every CANCEL_CHECK_SECONDS (one read): a cancel asked on any
  instance stops the generation within about that long (one asked here stops it at once).
Per reply, that was two commands a second more: with 50 replies at once, 100 commands a second
that slowed every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from bson import ObjectId
from openai import AsyncStream
from openai.types.chat import ChatCompletionChunk
from pymongo.errors import PyMongoError

from app.assistant import generations_repository as generations
from app.assistant.upstream import Upstream, UpstreamFailure
from app.chat import replies as chat_replies
from app.chat.schemas import MessageOut, ReplyStatus
from app.core.background import stop_within
from app.core.config import Settings
from app.core.db import Database, Document
from app.core.types import utc_now

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.25
PROGRESS_WRITES_PER_SECOND = 40
CANCEL_CHECK_SECONDS = 0.5
RENEW_SECONDS = 3.0
LEASE = timedelta(seconds=12)
SWEEP_SECONDS = 3.0
CLOSE_TIMEOUT_SECONDS = 5.0
INTERRUPTED = {"reason": "interrupted", "message": "the server generating this reply stopped"}


@dataclass(frozen=True)
class Plan:
    """A reply to generate: the stored assistant message and its generation record (what is
    sent upstream is in the call its Early opens)."""

    record_id: ObjectId
    message_id: ObjectId
    session_id: ObjectId
    user_id: ObjectId
    slot: int  # of the user's MODEL_MAX_PER_USER (its generations record holds it)


@dataclass(eq=False)
class Generation:
    plan: Plan
    early: Early
    text: str = ""
    final: MessageOut | None = None
    cancel_requested: bool = False
    ending: bool = False  # writing its end: a cancel now would interrupt that write
    started: float = field(default_factory=time.monotonic)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, text: str) -> None:
        self.text += text
        self._changed.set()

    def finish(self, final: MessageOut | None) -> None:
        self.final = final
        self._changed.set()

    async def deltas(self) -> AsyncIterator[str]:
        """The text as it grows (what was added since the last delta), until it is done."""
        sent = 0
        while True:
            self._changed.clear()
            if len(self.text) > sent:
                delta, sent = self.text[sent:], len(self.text)
                yield delta
            if self.final is not None and sent >= len(self.text):
                return
            await self._changed.wait()


Opener = Callable[[], Coroutine[Any, Any, Any]]
"""Sends a reply's upstream call: what it answers (the stream opened) is the producer's."""


class Early:
    """A reply's upstream call, sent while the transaction that stores the reply commits.

    The ask calls `start` once it has passed its checks (the session not busy, a slot of the
    user's free): with one of the process's MODEL_MAX_CONCURRENT slots free, the call is sent
    at once, so the model reads the prompt while the database commits, and the runner takes
    it over (`answer`); else it is sent by the runner, in its turn. An ask that does not end
    in a stored reply (a conflict) `discard`s it: cancelled, its slot given back; a retried
    transaction sends it again, unless its opener is the same (a door's call, which does not
    depend on what the attempt read). A replayed Idempotency-Key never gets this far, and a refused ask (busy, too
    many replies) never starts one.
    """

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._opener: Opener | None = None
        self._task: asyncio.Task[Any] | None = None
        self.started: float | None = None

    @property
    def holds_slot(self) -> bool:
        return self._task is not None

    async def start(self, opener: Opener) -> None:
        if self._task is not None and opener is self._opener:
            return  # a retried transaction with the same call (one that does not depend on the attempt): it stands
        self.discard()
        self._opener = opener
        if not self._slots.locked():
            await self._slots.acquire()  # free: taken without waiting
            self.started = time.monotonic()
            self._task = asyncio.create_task(opener(), name="reply-early-upstream")

    async def answer(self) -> Any:
        """What the opener answered (the stream opened): sent early, or now."""
        if self._task is not None:
            return await self._task
        assert self._opener is not None, "an ask that stored a reply has started its upstream call"
        return await self._opener()

    def discard(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task.add_done_callback(_close_opened)
            self._task = None
            self._slots.release()
        self._opener = None
        self.started = None

    def release(self) -> None:
        """The generation has ended: give back the slot it was sent in."""
        if self._task is not None:
            self._task = None
            self._slots.release()


@runtime_checkable
class Closable(Protocol):
    """What an opener may answer that holds a connection: an AsyncStream, or a door's wrapper."""

    async def close(self) -> None: ...


def _close_opened(task: asyncio.Task[Any]) -> None:
    """A discarded call that had opened its stream already: closed, not left to the collector."""
    if task.cancelled() or task.exception() is not None:
        return
    opened = task.result()
    if isinstance(opened, Closable):
        asyncio.get_running_loop().create_task(opened.close())


Produce = Callable[[Generation], Awaitable[Document]]
"""Writes a reply into `generation` (Generation.add) from what `generation.early.answer()` opened
and answers its final metadata; raises UpstreamFailure when the model fails. The runner's own
streams the session's history; a door that speaks to the upstream itself (the /v1 gateway)
opens its own call."""


class Runner:
    def __init__(self, database: Database, upstream: Upstream, settings: Settings) -> None:
        self.database = database
        self.upstream = upstream
        self._slots = asyncio.Semaphore(settings.model_max_concurrent)
        self._running: dict[ObjectId, tuple[Generation, asyncio.Task[None]]] = {}
        self._supervisor: asyncio.Task[None] | None = None

    def early(self) -> Early:
        """For an ask about to store a reply: its upstream call, sent beside the transaction."""
        return Early(self._slots)

    def start(self, plan: Plan, early: Early, produce: Produce | None = None) -> Generation:
        """Write the stored reply: `produce` (the runner's own by default) with the call `early`
        sent or will send."""
        generation = Generation(plan, early, started=early.started or time.monotonic())
        task = asyncio.create_task(self._run(generation, produce), name=f"reply-{plan.message_id}")
        self._running[plan.message_id] = (generation, task)
        task.add_done_callback(lambda _: self._running.pop(plan.message_id, None))
        if self._supervisor is None or self._supervisor.done():
            self._supervisor = asyncio.create_task(self._supervise(), name="reply-supervisor")
        return generation

    def slots_of(self, user_id: ObjectId) -> set[int]:
        """The user's slots this process's replies hold (other processes may hold more)."""
        return {g.plan.slot for g, _ in self._running.values() if g.plan.user_id == user_id}

    def local(self, message_id: ObjectId) -> Generation | None:
        running = self._running.get(message_id)
        return None if running is None else running[0]

    def cancel_local(self, message_id: ObjectId) -> bool:
        running = self._running.get(message_id)
        if running is None:
            return False
        generation, task = running
        if not generation.ending:
            generation.cancel_requested = True
            task.cancel()
        return True

    async def _run(self, generation: Generation, produce: Produce | None) -> None:
        plan = generation.plan
        stop = asyncio.Event()
        task = asyncio.current_task()
        assert task is not None
        watcher = asyncio.create_task(self._write_progress(generation, stop), name=f"reply-progress-{plan.message_id}")
        started = generation.started
        status: ReplyStatus = "failed"
        metadata: Document = {}
        try:
            slot = contextlib.nullcontext() if generation.early.holds_slot else self._slots
            async with slot:
                metadata = await (produce or self._generate)(generation)
            status = "complete"
        except UpstreamFailure as failure:
            metadata = {"error": failure.as_metadata()}
        except asyncio.CancelledError:
            if not generation.cancel_requested:  # the server is shutting down
                await self._end(generation, watcher, stop, "failed", {"error": INTERRUPTED})
                raise
            task.uncancel()
            status = "cancelled"
        except Exception:
            log.exception("a reply failed", extra={"message_id": str(plan.message_id)})
            metadata = {"error": {"reason": "internal", "message": "the server failed to generate this reply"}}
        finally:
            generation.early.release()
        metadata["duration_ms"] = round((time.monotonic() - started) * 1000)
        await self._end(generation, watcher, stop, status, metadata)

    async def _generate(self, generation: Generation) -> Document:
        started = generation.started
        opened: AsyncStream[ChatCompletionChunk] = await generation.early.answer()
        first_token_ms: int | None = None
        finish_reason: str | None = None
        usage: dict[str, int] | None = None
        refusal = ""
        async for piece in self.upstream.pieces(opened):
            if piece.text:
                if first_token_ms is None:
                    first_token_ms = round((time.monotonic() - started) * 1000)
                generation.add(piece.text)
            refusal += piece.refusal
            finish_reason = piece.finish_reason or finish_reason
            usage = piece.usage or usage
        if refusal and not generation.text:
            raise UpstreamFailure("refusal", refusal[:200])
        if finish_reason is None:
            raise UpstreamFailure("connection", "the model's stream ended before the reply did")
        if finish_reason == "content_filter":
            raise UpstreamFailure("refusal", "the model's content filter stopped the reply")
        result: Document = {"finish_reason": finish_reason, "first_token_ms": first_token_ms}
        if usage is not None:
            result["usage"] = usage
        return result

    async def _end(
        self,
        generation: Generation,
        watcher: asyncio.Task[None],
        stop: asyncio.Event,
        status: ReplyStatus,
        metadata: Document,
    ) -> None:
        """Stop the watcher, write the final text and status, drop the lease record."""
        generation.ending = True
        stop.set()
        with contextlib.suppress(Exception):
            await watcher
        plan = generation.plan
        final: MessageOut | None = None
        try:
            await chat_replies.write_reply(self.database, plan.message_id, generation.text, status, metadata)
            await generations.delete(self.database.db, plan.record_id)
            final = await chat_replies.find_message(self.database, plan.message_id)
        except PyMongoError:
            log.warning("a reply's end could not be stored; its lease will run out", extra={"status": status})
        generation.finish(final)
        log.info("reply ended", extra={"message_id": str(plan.message_id), "status": status})

    def _flush_seconds(self) -> float:
        return max(FLUSH_SECONDS, len(self._running) / PROGRESS_WRITES_PER_SECOND)

    async def _write_progress(self, generation: Generation, stop: asyncio.Event) -> None:
        plan = generation.plan
        written = 0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._flush_seconds())
            if stop.is_set() or len(generation.text) == written:
                continue
            written = len(generation.text)
            try:
                await chat_replies.write_reply(self.database, plan.message_id, generation.text, "streaming")
            except PyMongoError as exc:
                log.warning("a reply's progress could not be stored", extra={"error": type(exc).__name__})

    async def _supervise(self) -> None:
        """Renew the leases and read the cancel flags of this process's replies, until it has none."""
        last_renew = time.monotonic()
        while self._running:
            await asyncio.sleep(CANCEL_CHECK_SECONDS)
            record_ids = [generation.plan.record_id for generation, _ in self._running.values()]
            if not record_ids:
                continue
            try:
                if time.monotonic() - last_renew >= RENEW_SECONDS:
                    last_renew = time.monotonic()
                    await generations.renew(self.database.db, record_ids, utc_now() + LEASE)
                live = {record["_id"]: record for record in await generations.find(self.database.db, record_ids)}
            except PyMongoError as exc:
                log.warning("replies' leases or cancel flags could not be read", extra={"error": type(exc).__name__})
                continue
            except Exception:  # never stop renewing: the replies would be taken for a dead process's
                log.exception("the replies' supervisor failed; going on")
                continue
            for message_id, (generation, _) in list(self._running.items()):
                record = live.get(generation.plan.record_id)
                if generation.plan.record_id in record_ids and (record is None or record.get("cancel")):
                    self.cancel_local(message_id)  # asked on another instance, or the reply is gone

    async def close(self) -> None:
        """Shutting down: every reply still running here ends `failed` (interrupted) now,
        rather than when its lease runs out."""
        tasks = [task for _, task in self._running.values()]
        if self._supervisor is not None:
            tasks.append(self._supervisor)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_SECONDS)


async def sweep_expired(database: Database) -> int:
    """Turn the replies whose lease ran out (their process died) into `failed`, reason
    `interrupted`, keeping their partial text; returns how many."""
    swept = 0
    for record in await generations.expired(database.db, utc_now()):
        message = await chat_replies.find_message(database, record["message_id"])
        if message is not None and message.status == "streaming":
            await chat_replies.write_reply(database, message.id, message.content, "failed", {"error": INTERRUPTED})
            swept += 1
        await generations.delete(database.db, record["_id"])
    return swept


@contextlib.asynccontextmanager
async def sweeping(database: Database) -> AsyncIterator[None]:
    """Sweep every SWEEP_SECONDS for the lifetime of the block; stopped between its commands
    (background.stop_within)."""
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            try:
                if await sweep_expired(database):
                    log.info("replies interrupted by a stopped server were marked failed")
            except PyMongoError as exc:
                log.warning("the reply sweep failed", extra={"error": type(exc).__name__})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SWEEP_SECONDS)

    task = asyncio.create_task(loop(), name="reply-sweeper")
    try:
        yield
    finally:
        stop.set()
        await stop_within(task, CLOSE_TIMEOUT_SECONDS)


def record(plan_fields: dict[str, Any]) -> Document:
    """A new generations record (lease from now)."""
    now = utc_now()
    return {**plan_fields, "cancel": False, "lease_until": now + LEASE, "created_at": now}
