"""The Chat Completions gateway: a request runs through the configured upstream (the
assistant's `openai` client), with an agent's name accepted as `model`, and is recorded into a
session of ours.

Recording: Chat Completions clients resend the whole history each turn. With a conversation
named (header `X-Chat-Session`, else `metadata.session`, else `user`) the named session
(get-or-create) gets the request's messages it does not hold yet (the longest stored prefix is
matched, only the new suffix is stored) and, in the same transaction, the reply, which is
then written as it streams (recorded.py). Without a name, each call is a new session, or none
when CHAT_COMPLETIONS_RECORD is false. Messages keep their Chat Completions shape (`original`),
tool calls and results as `metadata.tool_calls` / `metadata.tool_call_id`, as the UI renders
them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
from bson import ObjectId
from openai import AsyncStream
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pymongo.asynchronous.client_session import AsyncClientSession

from app.assistant.agents import get_agent
from app.assistant.schemas import AgentOut
from app.assistant.service import Assistant
from app.assistant.upstream import NO_MESSAGES, UpstreamFailure, sent_as_is
from app.chat import service
from app.chat.metadata import MetadataError, validate_metadata
from app.chat.replies import Appending, AppendingFor
from app.chat.schemas import CONTENT_MAX, MessageCreate, Role, SessionCreate, SessionName
from app.core.config import Settings
from app.core.db import Database, Document
from app.core.errors import AppError, NotFound
from app.openai_compat.errors import InvalidParameter
from app.openai_compat.schemas import OpenAIMetadata

log = logging.getLogger(__name__)
MAX_REQUEST_MESSAGES = 1000
SESSION_HEADER = "X-Chat-Session"
ABANDONED = ("failed", "cancelled")  # replies a client may not keep in its history
MAX_ABANDONED = 32  # read past, at most, when matching the stored history
_SESSION_NAME: TypeAdapter[str] = TypeAdapter(SessionName)
CHAT_ROLES: dict[str, Role] = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
}


class CompletionRequest(BaseModel):
    """What we read of a request; every other field is passed to the upstream as sent."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=256)
    messages: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_REQUEST_MESSAGES)
    stream: bool = False
    user: str | None = Field(default=None, max_length=128)
    metadata: OpenAIMetadata | None = None


class UpstreamError(AppError):
    """The upstream refused or failed: its 4xx passed on, anything else a 502."""

    def __init__(self, status_code: int, detail: str, failure: UpstreamFailure) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.failure = failure  # as a recorded reply stores it


@dataclass
class Call:
    """The request as sent upstream, and where it is recorded."""

    model: str
    messages: list[dict[str, Any]]
    extra: dict[str, Any]
    session_name: str | None
    record: bool
    agent: str | None = None  # the agent named as `model`
    session: Document | None = None  # the named session, when it existed already


async def prepare(
    database: Database, settings: Settings, body: CompletionRequest, header_name: str | None, user_id: ObjectId
) -> Call:
    """An agent's model and instructions when `model` names one; the model itself otherwise
    (when MODEL_ALLOW_ANY); 404 model_not_found else. The named session is read beside the
    agent (created later, once the call passed its checks, when it does not exist)."""
    extra = dict(body.model_extra or {})
    messages = list(body.messages)
    model = body.model
    agent_name: str | None = None
    name = header_name or _session_name(body)
    agent, session = await asyncio.gather(
        _agent(database, body.model), service.named_session(database, user_id, name) if name else _nothing()
    )
    if agent is None:
        if not settings.model_allow_any:
            raise NotFound("The model does not exist: use an agent's name (GET /v1/models)")
    else:
        model, agent_name = agent.model, agent.name
        if agent.instructions:
            messages = [{"role": "system", "content": agent.instructions}, *messages]
        if agent.temperature is not None:
            extra.setdefault("temperature", agent.temperature)
        if agent.max_output_tokens is not None and "max_completion_tokens" not in extra:
            extra.setdefault("max_tokens", agent.max_output_tokens)
    if body.metadata is not None and extra.get("store"):  # OpenAI takes metadata with stored completions only
        extra["metadata"] = body.metadata
    if body.user is not None:
        extra["user"] = body.user
    call = Call(model, messages, extra, name, bool(name) or settings.chat_completions_record, agent_name, session)
    if call.record:  # refused before the upstream is paid for, not after
        for index, message in enumerate(body.messages):
            to_message(message, f"messages[{index}]")
    return call


async def _agent(database: Database, name: str) -> AgentOut | None:
    try:
        return await get_agent(database, name)
    except NotFound:
        return None


async def _nothing() -> None:
    return None


def _session_name(body: CompletionRequest) -> str | None:
    """`metadata.session`, else `user`: a valid session name, or a 400 naming the field."""
    given = [("metadata.session", (body.metadata or {}).get("session")), ("user", body.user)]
    for param, name in given:
        if name is not None:
            try:
                return _SESSION_NAME.validate_python(name)
            except ValidationError as exc:
                raise InvalidParameter(param, f"'{param}' is not a valid session name") from exc
    return None


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def to_message(raw: dict[str, Any], param: str) -> MessageCreate:
    """A Chat Completions message as one of ours (its shape kept apart, see module doc)."""
    role = CHAT_ROLES.get(raw.get("role"))  # type: ignore[arg-type]
    if role is None:
        raise InvalidParameter(f"{param}.role", f"'{param}.role' must be one of {', '.join(CHAT_ROLES)}")
    metadata: Document = {}
    if isinstance(raw.get("tool_calls"), list):
        metadata["tool_calls"] = raw["tool_calls"]
    if isinstance(raw.get("tool_call_id"), str):
        metadata["tool_call_id"] = raw["tool_call_id"]
    content = _text(raw.get("content"))
    try:
        validate_metadata(metadata)
    except (MetadataError, UnicodeEncodeError) as exc:
        raise InvalidParameter(param, f"'{param}': its tool calls are too large or invalid") from exc
    if len(content) > CONTENT_MAX:
        raise InvalidParameter(param, f"'{param}': its text is longer than {CONTENT_MAX} characters")
    return MessageCreate.model_construct(role=role, content=content, metadata=metadata)


def _comparable(message: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two history messages the same turn (ids and styles of sending aside)."""
    return (
        CHAT_ROLES.get(message.get("role", "")),
        _text(message.get("content")),
        message.get("tool_calls") or None,
        message.get("tool_call_id"),
    )


def _stored_comparable(document: Document) -> tuple[Any, ...]:
    original = document.get("original")
    if isinstance(original, dict):
        return _comparable(original)
    metadata = document.get("metadata") or {}
    return (document["role"], document["content"], metadata.get("tool_calls") or None, metadata.get("tool_call_id"))


def already_stored(stored: list[Document], sent: list[dict[str, Any]]) -> int:
    """How many of the sent messages the session holds already: the longest common prefix of
    the session's messages and the sent ones, passing over the replies that failed or were
    cancelled and that the client did not keep (it sends the next attempt's reply instead)."""
    matched = 0
    for document in stored:
        if matched == len(sent):
            break
        if _stored_comparable(document) == _comparable(sent[matched]):
            matched += 1
        elif document.get("status") not in ABANDONED:
            break
    return matched


def upstream_error(status: int | None, reason: str) -> UpstreamError:
    """What the client is answered for an upstream failure (the same on a replay)."""
    if status is not None and 400 <= status < 500:
        code, message = status, "The model's server refused the request"
    elif reason == "timeout":
        code, message = 504, "The model's server did not answer in time"
    else:
        code, message = 502, "The model's server failed"
    return UpstreamError(code, message, UpstreamFailure(reason, message, status))


def as_upstream_error(exc: Exception) -> UpstreamError:
    """An error of the upstream call (the SDK's, or the connection's mid-stream)."""
    status = exc.status_code if isinstance(exc, openai.APIStatusError) else None
    if isinstance(exc, openai.APIStatusError | openai.APIConnectionError):
        reason = "timeout" if isinstance(exc, openai.APITimeoutError) else "connection"
        reason = "upstream_error" if status is not None else reason
    elif isinstance(exc, httpx.TimeoutException):
        reason = "timeout"
    else:
        reason = "connection" if isinstance(exc, httpx.HTTPError) else "upstream_error"
    return upstream_error(status, reason)


async def complete(assistant: Assistant, call: Call) -> dict[str, Any]:
    try:
        completion = await assistant.upstream.client.chat.completions.create(
            model=call.model, messages=NO_MESSAGES, extra_body=sent_as_is(call.messages, call.extra)
        )
    except openai.OpenAIError as exc:
        raise as_upstream_error(exc) from exc
    answer: dict[str, Any] = completion.model_dump(exclude_unset=True)
    return answer


async def open_stream(assistant: Assistant, call: Call) -> AsyncStream[ChatCompletionChunk]:
    try:
        return await assistant.upstream.client.chat.completions.create(
            model=call.model,
            messages=NO_MESSAGES,
            stream=True,
            extra_body=sent_as_is(call.messages, call.extra),
        )
    except openai.OpenAIError as exc:
        raise as_upstream_error(exc) from exc


def sse(chunk: ChatCompletionChunk | dict[str, Any]) -> str:
    data = (
        json.dumps(chunk, ensure_ascii=False) if isinstance(chunk, dict) else chunk.model_dump_json(exclude_unset=True)
    )
    return f"data: {data}\n\n"


async def passed_on(chunks: AsyncStream[ChatCompletionChunk]) -> AsyncIterator[str]:
    """An unrecorded stream: the upstream's chunks as they come."""
    async with chunks:
        async for chunk in chunks:
            yield sse(chunk)


@dataclass
class Recording:
    session: Document  # the user's
    created_unnamed: bool  # a new session only this call knows of (every call without a name)

    @property
    def session_id(self) -> str:
        return str(self.session["_id"])


async def recording_session(database: Database, user_id: ObjectId, call: Call, sent: list[dict[str, Any]]) -> Recording:
    """The named session (get-or-create; a new one without a name)."""
    if call.session is not None:
        return Recording(call.session, False)
    first_text = next((_text(m.get("content")) for m in sent if m.get("role") == "user"), "")
    title = first_text.strip().split("\n", 1)[0][:80] or "Chat completion"
    body = SessionCreate(title=title, name=call.session_name, platform="openai")
    found: list[Document] = []  # the session as create_session read it: not read once more

    def remember(document: Document) -> str:
        found.append(document)
        return str(document["_id"])

    await service.create_session(database, user_id, body, None, render=remember)
    return Recording(found[-1], call.session_name is None)


def unstored(database: Database, sent: list[dict[str, Any]]) -> AppendingFor:
    """The sent messages the session does not hold yet, with their originals: read in the
    reply's transaction, once its upstream call is on its way."""

    async def new(session: Document, transaction: AsyncClientSession | None) -> Appending:
        # The session's first messages, as many as were sent and a few abandoned replies.
        until = min(int(session["message_count"]), len(sent) + MAX_ABANDONED)
        stored = await service.stored_messages_between(database, session["_id"], 0, until, transaction)
        first_new = already_stored(stored, sent)
        messages = [to_message(m, f"messages[{first_new + i}]") for i, m in enumerate(sent[first_new:])]
        return Appending(messages, list(sent[first_new:]))

    return new
