"""Replies over chat: ask for one (with a message, or to the conversation as it stands), follow
it, cancel it; and what a user may pick (agents, models).

`Assistant` is the service API other doors build on: `ask` stores and starts a reply and
answers with the stored messages; `follow` yields a reply's text as it grows, whichever
instance generates it; `cancel` stops it from any instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from bson import ObjectId
from openai import AsyncStream
from openai.types.chat import ChatCompletionChunk
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from app.assistant import agents_repository, generations_repository, history
from app.assistant.runner import Opener, Plan, Produce, Runner, record
from app.assistant.schemas import ModelChoice, ModelList
from app.assistant.upstream import Request, Upstream
from app.chat import replies as chat_replies
from app.chat.replies import AppendingFor
from app.chat.schemas import MessageCreate, MessageOut, ReplyTarget
from app.chat.service import find_owned_session
from app.core.config import Settings
from app.core.db import Database, Document
from app.core.errors import Conflict, NotFound, TooManyRequests, UnprocessableContent
from app.core.idempotency import IdempotentRequest, StoredResponse
from app.core.types import parse_object_id

BUSY_SESSION = "A reply is being generated in this session already; wait for it or cancel it"
ASKS_WAITING = "Your earlier asks are still waiting to be stored; wait for them"
MESSAGE_NOT_FOUND = "Message not found"
PER_USER_RETRY_SECONDS = 5
FOLLOW_POLL_SECONDS = 0.25
CANCEL_WAIT_SECONDS = 3.0


@dataclass
class _Resolved:
    model: str
    agent: str | None = None
    instructions: str = ""
    temperature: float | None = None
    max_output_tokens: int | None = None


# The upstream call of a reply about to be stored, given the session as the transaction read it
# and who replies.
OpenerFor = Callable[[Document, _Resolved], Opener]


class _Contended(Conflict):
    """The generation record was refused without the user's replies read (the session is busy,
    or another process holds the slot): asked again, reading them (`_Pending.careful`)."""

    detail = BUSY_SESSION


class _Pending:
    """chat.replies.PendingReply: who replies, and the generation record, in the transaction;
    once it is recorded, the reply's upstream call is sent (Early) while the rest commits.

    The record's unique indexes keep one reply per session and MODEL_MAX_PER_USER per user
    across processes. So the user's replies are not read first: the slot tried is the lowest
    this process's replies do not hold, and a refused record asks again, `careful`, reading
    them (which tells a busy session, 409, from too many replies, 429)."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        user_id: ObjectId,
        target: ReplyTarget,
        runner: Runner,
        opener: OpenerFor,
    ) -> None:
        self.settings = settings
        self.database = database
        self.user_id = user_id
        self.target = target
        self.runner = runner
        self.early = runner.early()
        self.opener = opener
        self.careful = False
        self.resolved: _Resolved | None = None
        self.slot = 0
        self.record_id: ObjectId | None = None
        self.reply: MessageOut | None = None

    async def prepare(
        self, session_document: Document, reply_id: ObjectId, transaction: AsyncClientSession | None
    ) -> Document:
        session_id = session_document["_id"]
        taken = self.runner.slots_of(self.user_id)
        careful = self.careful or len(taken) >= self.settings.model_max_per_user
        if careful:
            # The user's replies being written (the session's own among them, when there is one).
            running = await generations_repository.of_user(self.database.db, self.user_id, transaction)
            if any(r["session_id"] == session_id for r in running):
                raise Conflict(BUSY_SESSION)
            taken = {int(r["slot"]) for r in running}
        free = [slot for slot in range(self.settings.model_max_per_user) if slot not in taken]
        if not free:
            raise TooManyRequests(
                PER_USER_RETRY_SECONDS,
                f"You have {self.settings.model_max_per_user} replies being generated; wait for one to end",
            )
        self.slot = free[0]
        new = record({"user_id": self.user_id, "session_id": session_id, "message_id": reply_id, "slot": self.slot})
        try:
            await generations_repository.insert(self.database.db, new, transaction)
        except DuplicateKeyError as exc:  # the session is busy, or the slot was taken
            raise (Conflict(BUSY_SESSION) if careful else _Contended()) from exc
        self.record_id = new["_id"]
        self.resolved = await self._resolve(session_document, transaction)
        await self.early.start(self.opener(session_document, self.resolved))
        metadata: Document = {"model": self.resolved.model}
        if self.resolved.agent is not None:
            metadata["agent"] = self.resolved.agent
        return metadata

    async def _resolve(self, session_document: Document, transaction: AsyncClientSession | None) -> _Resolved:
        if self.target.model is not None:
            if not self.settings.model_allow_any:
                raise UnprocessableContent(
                    "Pick an agent: choosing a model is not allowed here (MODEL_ALLOW_ANY)", loc=("body", "reply")
                )
            return _Resolved(self.target.model)
        name = self.target.agent or session_document.get("agent")
        if not isinstance(name, str):
            raise Conflict("This session has no agent: name one (reply.agent, or the session's agent)")
        agent = await agents_repository.find_agent(self.database.db, name, transaction)
        if agent is None:
            raise Conflict(f"The agent {name} does not exist (any more)")
        return _Resolved(
            agent["model"],
            name,
            agent.get("instructions", ""),
            agent.get("temperature"),
            agent.get("max_output_tokens"),
        )

    def stored(self, reply: MessageOut) -> None:
        self.reply = reply

    def plan(self) -> Plan:
        assert self.record_id is not None and self.reply is not None
        return Plan(self.record_id, self.reply.id, self.reply.session_id, self.user_id, self.slot)


class Assistant:
    def __init__(self, database: Database, settings: Settings, upstream: Upstream, runner: Runner) -> None:
        self.database = database
        self.settings = settings
        self.upstream = upstream
        self.runner = runner
        # Asks of each user not stored yet, in this process: they may wait ASK_WAIT_SECONDS for a
        # transaction slot, which every user's writes share.
        self._storing: Counter[ObjectId] = Counter()

    async def ask(
        self,
        user_id: ObjectId,
        raw_session_id: str,
        message: MessageCreate | None,
        target: ReplyTarget,
        idempotency: IdempotentRequest | None,
    ) -> tuple[StoredResponse, ObjectId]:
        """Store the message (when given) and an empty reply, start generating it, and answer
        with the stored response (201 {message, reply}, or 202 with the reply) and the reply.
        A replayed Idempotency-Key answers as the first time and starts nothing."""
        messages = [message] if message is not None else []
        pending = self._pending(user_id, target, self._history_opener(messages))
        return await self._asked(
            pending,
            None,
            lambda: chat_replies.append_with_reply(
                self.database, raw_session_id, user_id, message, pending, idempotency
            ),
        )

    async def ask_written_by(
        self,
        opener: Opener,
        produce: Produce,
        user_id: ObjectId,
        raw_session_id: str,
        new: AppendingFor,
        most: int,
        target: ReplyTarget,
        idempotency: IdempotentRequest | None,
        owned: Document | None = None,
    ) -> tuple[StoredResponse, ObjectId]:
        """`ask` for a door that speaks to the upstream itself: the messages `new` tells (at
        most `most`, with their originals) and the reply stored as by `ask`, `opener` sent
        beside the transaction (see Early), then `produce` writes the reply from what it opened,
        with the same lease, progress writes, cancel and end. Answers 202 with the reply.
        `owned`: the session as the door found it, the user's (see append_many_with_reply)."""
        pending = self._pending(user_id, target, lambda _session, _resolved: opener)
        return await self._asked(
            pending,
            produce,
            lambda: chat_replies.append_many_with_reply(
                self.database,
                raw_session_id,
                user_id,
                new,
                most,
                pending,
                idempotency,
                lambda stored: StoredResponse(202, stored[-1].model_dump_json()),
                owned,
            ),
        )

    def _pending(self, user_id: ObjectId, target: ReplyTarget, opener: OpenerFor) -> _Pending:
        return _Pending(self.settings, self.database, user_id, target, self.runner, opener)

    def _history_opener(self, messages: Sequence[MessageCreate]) -> OpenerFor:
        """The runner's own call: the stored conversation the transaction saw (up to the
        session's count: those are committed), then the messages being stored with the reply."""
        newest = [m.model_dump() for m in messages]

        def opener(session: Document, resolved: _Resolved) -> Opener:
            until_seq = int(session["message_count"]) + 1

            async def open_stream() -> AsyncStream[ChatCompletionChunk]:
                sent = await history.conversation(
                    self.database,
                    session["_id"],
                    until_seq,
                    resolved.instructions,
                    self.settings.model_context_chars,
                    newest,
                )
                request = Request(resolved.model, sent, resolved.temperature, resolved.max_output_tokens)
                return await self.upstream.open(request)

            return open_stream

        return opener

    async def _asked(
        self, pending: _Pending, produce: Produce | None, store: Callable[[], Awaitable[StoredResponse]]
    ) -> tuple[StoredResponse, ObjectId]:
        """The reply stored: started (with the call sent early); a replayed Idempotency-Key
        answers as the first time and starts nothing; refused: the early call discarded. A user
        with MODEL_MAX_PER_USER asks still being stored here is refused at once (429): a burst of
        one user's asks does not fill the queue every user's writes wait in."""
        user_id = pending.user_id
        if self._storing[user_id] >= self.settings.model_max_per_user:
            raise TooManyRequests(PER_USER_RETRY_SECONDS, ASKS_WAITING)
        self._storing[user_id] += 1
        try:
            try:
                response = await store()
            except _Contended:
                pending.careful = True
                response = await store()
        except BaseException:
            pending.early.discard()
            raise
        finally:
            self._storing[user_id] -= 1
            if not self._storing[user_id]:
                del self._storing[user_id]
        if response.replayed:
            pending.early.discard()
            return response, _reply_id(response)
        plan = pending.plan()
        self.runner.start(plan, pending.early, produce)
        return response, plan.message_id

    async def follow(self, reply_id: ObjectId) -> AsyncIterator[str | MessageOut]:
        """The reply's text as it grows (str deltas), then the final message. From memory when
        this instance generates it, else from the database (polled)."""
        generation = self.runner.local(reply_id)
        if generation is not None:
            async for delta in generation.deltas():
                yield delta
            if generation.final is not None:
                yield generation.final
                return
        sent = 0
        while True:
            current = await chat_replies.find_message(self.database, reply_id)
            if current is None:
                return
            if len(current.content) > sent:
                yield current.content[sent:]
                sent = len(current.content)
            if current.status != "streaming":
                yield current
                return
            await asyncio.sleep(FOLLOW_POLL_SECONDS)

    async def cancel(self, user_id: ObjectId, raw_session_id: str, raw_message_id: str) -> MessageOut:
        """Stop the reply (any instance's): at once here, within a second elsewhere; answered
        with the reply once stopped (or as it is after CANCEL_WAIT_SECONDS). A reply that has
        ended already is answered as it is."""
        session = await find_owned_session(self.database, raw_session_id, user_id)
        message = await self._owned_message(session, raw_message_id)
        if message.status != "streaming":
            return message
        record_ = await generations_repository.of_message(self.database.db, message.id)
        if record_ is not None:
            await generations_repository.request_cancel(self.database.db, record_["_id"])
        self.runner.cancel_local(message.id)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CANCEL_WAIT_SECONDS):  # the generating instance sees the flag
                async for item in self.follow(message.id):
                    if isinstance(item, MessageOut):
                        return item
        return (await chat_replies.find_message(self.database, message.id)) or message

    async def _owned_message(self, session: Document, raw_message_id: str) -> MessageOut:
        try:
            message_id = parse_object_id(raw_message_id)
        except ValueError as exc:
            raise NotFound(MESSAGE_NOT_FOUND) from exc
        message = await chat_replies.find_message(self.database, message_id)
        if message is None or message.session_id != session["_id"]:
            raise NotFound(MESSAGE_NOT_FOUND)
        return message

    async def choices(self) -> ModelList:
        """The agents, and with MODEL_ALLOW_ANY the upstream's own models."""
        items = [
            ModelChoice(id=agent["name"], kind="agent", model=agent["model"], description=agent.get("description", ""))
            for agent in await agents_repository.list_agents(self.database.db)
        ]
        reachable = True
        if self.settings.model_allow_any:
            names, reachable = await self.upstream.model_names()
            items += [ModelChoice(id=name, kind="model", model=name) for name in names]
        return ModelList(items=items, upstream_reachable=reachable)

    async def close(self) -> None:
        await self.runner.close()
        await self.upstream.close()


async def streaming_reply(database: Database, session_id: ObjectId) -> list[MessageOut]:
    """The session's reply being written now, as stored (none, or one)."""
    record_ = await generations_repository.of_session(database.db, session_id)
    if record_ is None:
        return []
    message = await chat_replies.find_message(database, record_["message_id"])
    return [message] if message is not None and message.status == "streaming" else []


def _reply_id(response: StoredResponse) -> ObjectId:
    """The reply's id in a stored response (201 {message, reply}, or 202 the reply itself)."""
    body = json.loads(response.body)
    reply = body["reply"] if response.status_code == 201 else body
    return ObjectId(reply["_id"])
