"""A recorded completion: the reply is one of the assistant's (stored `streaming` when the call
starts, written as it streams at most every 250 ms, leased, ended complete/failed/cancelled/
interrupted, watchable and cancellable like any reply), written by the assistant's runner with
this door's producer, which speaks to the upstream with the request as sent and passes its
chunks on, one for one, through an outbox the response reads.

A client that drops a streamed completion stops it, as OpenAI does: the reply ends `cancelled`
keeping what the model had said. A retried call with the same Idempotency-Key starts nothing:
it is answered from the stored reply (whole, or as chunks following it while it streams).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from bson import ObjectId
from openai import AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from app.assistant.runner import Generation, Opener, Produce
from app.assistant.service import Assistant
from app.assistant.upstream import NO_MESSAGES, UpstreamFailure, sent_as_is
from app.chat import replies, service
from app.chat.metadata import MetadataError, validate_metadata
from app.chat.schemas import MessageOut, ReplyTarget
from app.core.db import Database, Document
from app.core.errors import AppError, NotFound
from app.core.idempotency import IdempotentRequest
from app.openai_compat import completions
from app.openai_compat.completions import Call, UpstreamError
from app.openai_compat.errors import error_body

log = logging.getLogger(__name__)
DONE = "data: [DONE]\n\n"
STOPPED = completions.sse(error_body(502, "The model stopped answering"))
Outbox = asyncio.Queue[str | UpstreamError | None]  # SSE events, an error before the first, None: the end


@dataclass
class ToolCalls:
    """A streamed reply's tool calls, merged by index."""

    merged: dict[int, dict[str, Any]] = field(default_factory=dict)

    def add(self, deltas: Any) -> None:
        for call in deltas or []:
            merged = self.merged.setdefault(call.index, {"id": "", "type": "function", "function": {}})
            merged["id"] = call.id or merged["id"]
            if call.function is not None:
                function = merged["function"]
                function["name"] = function.get("name", "") + (call.function.name or "")
                function["arguments"] = function.get("arguments", "") + (call.function.arguments or "")

    def listed(self) -> list[dict[str, Any]]:
        return [self.merged[index] for index in sorted(self.merged)]


@dataclass
class Started:
    reply_id: ObjectId
    replayed: bool
    answers: list[dict[str, Any]]  # a whole call's upstream answer, once it came


async def start(
    assistant: Assistant,
    database: Database,
    user_id: ObjectId,
    call: Call,
    sent: list[dict[str, Any]],
    idempotency: IdempotentRequest | None,
    outbox: Outbox | None = None,
) -> Started:
    """Store the new messages and the reply (`streaming`) and start writing it; or, for a
    replayed Idempotency-Key, nothing but where the reply is. With an `outbox` the call is
    streamed, its events put there as they come (see streamed)."""
    recording = await completions.recording_session(database, user_id, call, sent)
    new = completions.unstored(database, sent)
    answers: list[dict[str, Any]] = []
    opener = _whole_answer(assistant, call) if outbox is None else _opened_stream(assistant, call, outbox)
    produce = _whole(answers) if outbox is None else _streamed(outbox)
    target = ReplyTarget(agent=call.agent) if call.agent is not None else ReplyTarget(model=call.model)
    try:
        response, reply_id = await assistant.ask_written_by(
            opener, produce, user_id, recording.session_id, new, len(sent), target, idempotency, recording.session
        )
    except AppError:  # refused (busy, too many replies, a key in flight): no empty session left
        await _forget(database, user_id, recording)
        raise
    if response.replayed:  # the first call's session holds it all
        await _forget(database, user_id, recording)
    return Started(reply_id, response.replayed, answers)


async def _forget(database: Database, user_id: ObjectId, recording: completions.Recording) -> None:
    if recording.created_unnamed:
        await service.delete_session(database, recording.session_id, user_id)


def _reply_metadata(finish_reason: str | None, usage: Any, tool_calls: list[dict[str, Any]]) -> Document:
    if finish_reason is None:
        raise UpstreamFailure("connection", "the model's stream ended before the reply did")
    metadata: Document = {"finish_reason": finish_reason}
    if usage is not None:
        metadata["usage"] = usage.model_dump(exclude_unset=True)
    if tool_calls:
        try:
            validate_metadata({"tool_calls": tool_calls})
            metadata["tool_calls"] = tool_calls
        except (MetadataError, UnicodeEncodeError):
            log.warning("a chat completion's tool calls are too large to record")
    return metadata


class Relay:
    """The upstream's stream read as it comes: each chunk passed on at once (to the outbox the
    response reads, while the reply's transaction may still be committing) and kept for the
    producer, which writes the reply from them."""

    def __init__(self, chunks: AsyncStream[ChatCompletionChunk], outbox: Outbox) -> None:
        self._chunks = chunks
        self._read: asyncio.Queue[ChatCompletionChunk | Exception | None] = asyncio.Queue()
        self._pump = asyncio.create_task(self._pass_on(outbox), name="chat-completion-relay")

    async def _pass_on(self, outbox: Outbox) -> None:
        try:
            async for chunk in self._chunks:
                outbox.put_nowait(completions.sse(chunk))
                self._read.put_nowait(chunk)
        except Exception as exc:  # the connection's or the SDK's: the producer records the failure
            outbox.put_nowait(STOPPED)
            self._read.put_nowait(exc)
        else:
            self._read.put_nowait(None)

    async def read(self) -> AsyncIterator[ChatCompletionChunk]:
        """The chunks, as passed on; the stream's error raised after them."""
        while (item := await self._read.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item

    async def close(self) -> None:
        self._pump.cancel()
        await self._chunks.close()


def _opened_stream(assistant: Assistant, call: Call, outbox: Outbox) -> Opener:
    """The call sent and relayed (Relay); its refusal put in the outbox as the error to answer."""

    async def open_stream() -> Relay:
        try:
            chunks = await completions.open_stream(assistant, call)
        except UpstreamError as error:
            outbox.put_nowait(error)
            raise error.failure from error
        return Relay(chunks, outbox)

    return open_stream


def _streamed(outbox: Outbox) -> Produce:
    async def produce(generation: Generation) -> Document:
        try:
            relay: Relay = await generation.early.answer()  # a refusal: passed on by the opener
            finish_reason: str | None = None
            usage: Any = None
            tool_calls = ToolCalls()
            try:
                async for chunk in relay.read():
                    for choice in chunk.choices[:1]:
                        generation.add(choice.delta.content or "")
                        tool_calls.add(choice.delta.tool_calls)
                        finish_reason = choice.finish_reason or finish_reason
                    usage = chunk.usage or usage
            except (openai.OpenAIError, httpx.HTTPError) as exc:  # STOPPED passed on by the relay
                raise completions.as_upstream_error(exc).failure from exc
            finally:
                await relay.close()
            if finish_reason is None:
                outbox.put_nowait(STOPPED)
            return _reply_metadata(finish_reason, usage, tool_calls.listed())
        finally:
            outbox.put_nowait(None)

    return produce


def _whole_answer(assistant: Assistant, call: Call) -> Opener:
    async def answer() -> ChatCompletion:
        try:
            return await assistant.upstream.client.chat.completions.create(
                model=call.model,
                messages=NO_MESSAGES,
                extra_body=sent_as_is(call.messages, call.extra),
            )
        except (openai.OpenAIError, httpx.HTTPError) as exc:
            raise completions.as_upstream_error(exc).failure from exc

    return answer


def _whole(answers: list[dict[str, Any]]) -> Produce:
    async def produce(generation: Generation) -> Document:
        completion: ChatCompletion = await generation.early.answer()
        answers.append(completion.model_dump(exclude_unset=True))
        if not completion.choices:
            return _reply_metadata("stop", completion.usage, [])
        choice = completion.choices[0]
        generation.add(choice.message.content or "")
        tool_calls = [c.model_dump(exclude_unset=True) for c in choice.message.tool_calls or []]
        return _reply_metadata(choice.finish_reason, completion.usage, tool_calls)

    return produce


async def ended(assistant: Assistant, reply_id: ObjectId) -> MessageOut:
    """The reply once it has ended (whichever instance writes it)."""
    async for item in assistant.follow(reply_id):
        if isinstance(item, MessageOut):
            return item
    raise NotFound("The reply was deleted")


async def streamed(
    assistant: Assistant,
    database: Database,
    user_id: ObjectId,
    call: Call,
    sent: list[dict[str, Any]],
    idempotency: IdempotentRequest | None,
) -> tuple[AsyncIterator[str], bool]:
    """A streamed call's events, and whether they replay a stored reply. The upstream's chunks
    are passed on as they come, from before the reply's transaction has committed (the
    client's first token does not wait for the commit: Relay); a refusal before any (a busy
    session, too many replies, the upstream's own) is raised, answered with its status; a
    failure to store the reply after some ends the stream with that error."""
    outbox: Outbox = asyncio.Queue()
    starting = asyncio.ensure_future(start(assistant, database, user_id, call, sent, idempotency, outbox))
    starting.add_done_callback(functools.partial(_end_without_producer, outbox))
    try:
        first = await outbox.get()
    except BaseException:
        starting.add_done_callback(functools.partial(_stop_stored, assistant))
        raise
    if isinstance(first, UpstreamError):  # the reply is stored failed by its producer
        await asyncio.gather(starting, return_exceptions=True)
        raise first
    if first is None:  # no event: refused (raised here), replayed, or an empty stream
        started = await starting
        if started.replayed:
            return replayed_chunks(assistant, started.reply_id), True
    return relayed(assistant, starting, outbox, first), False


def _end_without_producer(outbox: Outbox, starting: asyncio.Future[Started]) -> None:
    """No reply is written here (refused, or a replayed Idempotency-Key): the events end."""
    if starting.cancelled() or starting.exception() is not None or starting.result().replayed:
        outbox.put_nowait(None)


def _stop_stored(assistant: Assistant, starting: asyncio.Future[Started]) -> None:
    if not starting.cancelled() and starting.exception() is None:
        assistant.runner.cancel_local(starting.result().reply_id)


async def relayed(
    assistant: Assistant, starting: asyncio.Future[Started], outbox: Outbox, first: str | UpstreamError | None
) -> AsyncIterator[str]:
    """The upstream's chunks as they come (from before the reply is stored); the client going
    away stops the reply (kept as it stands, `cancelled`), once stored. A reply that could not
    be stored ends the stream with that error."""
    item = first
    try:
        while isinstance(item, str):
            yield item
            item = await outbox.get()
    finally:
        if item is not None:
            starting.add_done_callback(functools.partial(_stop_stored, assistant))
    try:
        started = await asyncio.shield(starting)
    except Exception as exc:
        if not isinstance(exc, AppError):
            log.exception("a streamed chat completion's reply could not be stored")
        error = exc if isinstance(exc, AppError) else AppError("The reply could not be stored")
        yield completions.sse(error_body(error.status_code, error.detail))
        return
    # [DONE] once the reply's end is stored: a client's next turn, sent at once, is not refused
    # as the session's reply still being written.
    if (await ended(assistant, started.reply_id)).status == "complete":
        yield DONE


def _error(reply: MessageOut) -> UpstreamError:
    error = reply.metadata.get("error") or {}
    return completions.upstream_error(error.get("status"), str(error.get("reason", "")))


def whole_answer(reply: MessageOut) -> dict[str, Any]:
    """A stored reply as a completion (a replay); its failure as the error it was answered."""
    if reply.status == "failed":
        raise _error(reply)
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
    if reply.metadata.get("tool_calls"):
        message["tool_calls"] = reply.metadata["tool_calls"]
    answer = _base(reply, "chat.completion")
    answer["choices"] = [{"index": 0, "message": message, "finish_reason": reply.metadata.get("finish_reason", "stop")}]
    if reply.metadata.get("usage"):
        answer["usage"] = reply.metadata["usage"]
    return answer


def _base(reply: MessageOut, kind: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{reply.id}",
        "object": kind,
        "created": int(reply.created_at.timestamp()),
        "model": str(reply.metadata.get("model", "")),
    }


async def replayed_chunks(assistant: Assistant, reply_id: ObjectId) -> AsyncIterator[str]:
    """A stored reply as chunks, following it while it is still written: its text as it grows,
    then its tool calls and finish reason (or its failure)."""
    reply = await replies.find_message(assistant.database, reply_id)
    if reply is None:
        raise NotFound("The reply was deleted")
    async for item in assistant.follow(reply_id):
        if isinstance(item, str):
            yield completions.sse(_chunk(reply, {"content": item}, None))
            continue
        if item.status == "failed":
            error = _error(item)
            yield completions.sse(error_body(error.status_code, error.detail))
            return
        calls = item.metadata.get("tool_calls") or []
        delta = {"tool_calls": [{"index": i, **call} for i, call in enumerate(calls)]} if calls else {}
        yield completions.sse(_chunk(item, delta, str(item.metadata.get("finish_reason", "stop"))))
        yield DONE


def _chunk(reply: MessageOut, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return {**_base(reply, "chat.completion.chunk"), "choices": [choice]}
