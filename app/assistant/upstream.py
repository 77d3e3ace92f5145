"""The model upstream: any OpenAI-compatible Chat Completions server, through the official
`openai` package (never hand-written HTTP or SSE parsing).

A reply is opened (the request sent, the upstream's headers back), then streams as `Piece`s
(text added, then the finish reason and the usage the upstream reported). Whatever goes wrong
becomes an `UpstreamFailure` with a short reason and the upstream's status: never the API key,
never the whole upstream body.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI, AsyncStream, omit
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from app.core.config import Settings

MODELS_CACHE_SECONDS = 60.0
MODELS_TIMEOUT_SECONDS = 5.0
MAX_ERROR_CHARS = 200
MAX_LISTED_MODELS = 500
NO_KEY = "none"  # local servers (Ollama, llama.cpp) take any key; the SDK requires one
NO_MESSAGES: list[ChatCompletionMessageParam] = []  # the typed argument, when sent_as_is carries them


class UpstreamFailure(Exception):
    """The generation failed upstream: `reason` is one of timeout, upstream_error, connection,
    refusal; `status` the upstream's HTTP status when it answered with one."""

    def __init__(self, reason: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status

    def as_metadata(self) -> dict[str, Any]:
        error: dict[str, Any] = {"reason": self.reason, "message": self.message}
        if self.status is not None:
            error["status"] = self.status
        return error


@dataclass
class Piece:
    text: str = ""
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    refusal: str = ""


@dataclass(frozen=True)
class Request:
    model: str
    messages: list[dict[str, Any]]
    temperature: float | None = None
    max_output_tokens: int | None = None


@dataclass
class _ModelList:
    names: list[str] = field(default_factory=list)
    reachable: bool = True
    fetched_at: float = float("-inf")


class Upstream:
    """One `AsyncOpenAI` client per app (closed with it): its connection pool is shared by
    every generation of the process."""

    def __init__(self, settings: Settings) -> None:
        self._key = settings.model_api_key.get_secret_value()
        self.timeout = settings.model_timeout_seconds
        self.client = AsyncOpenAI(
            base_url=settings.model_base_url,
            api_key=self._key or NO_KEY,
            timeout=self.timeout,
            max_retries=0,  # a retry would restart a reply already half-stored
        )
        self._models = _ModelList()
        self._models_lock = asyncio.Lock()

    async def close(self) -> None:
        await self.client.close()

    async def open(self, request: Request) -> AsyncStream[ChatCompletionChunk]:
        """Send the request; the stream once the upstream answers (its headers). UpstreamFailure
        when it fails or answers nothing for MODEL_TIMEOUT_SECONDS."""
        with self._failures():
            async with asyncio.timeout(self.timeout):
                return await self.client.chat.completions.create(
                    model=request.model,
                    messages=NO_MESSAGES,
                    stream=True,
                    stream_options={"include_usage": True},
                    temperature=omit if request.temperature is None else request.temperature,
                    max_tokens=omit if request.max_output_tokens is None else request.max_output_tokens,
                    extra_body=sent_as_is(request.messages),
                )

    async def pieces(self, stream: AsyncStream[ChatCompletionChunk]) -> AsyncIterator[Piece]:
        """An opened stream's reply as it is written; UpstreamFailure when the upstream fails,
        refuses, or sends nothing for MODEL_TIMEOUT_SECONDS between two chunks."""
        with self._failures():
            async with stream:
                chunks = aiter(stream)
                while True:
                    try:
                        async with asyncio.timeout(self.timeout):
                            chunk = await anext(chunks)
                    except StopAsyncIteration:
                        return
                    piece = Piece()
                    for choice in chunk.choices[:1]:
                        piece.text = choice.delta.content or ""
                        piece.refusal = choice.delta.refusal or ""
                        piece.finish_reason = choice.finish_reason
                    if chunk.usage is not None:
                        piece.usage = {
                            "prompt_tokens": chunk.usage.prompt_tokens,
                            "completion_tokens": chunk.usage.completion_tokens,
                            "total_tokens": chunk.usage.total_tokens,
                        }
                    yield piece

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """Whatever goes wrong upstream, as an UpstreamFailure."""
        try:
            yield
        except TimeoutError as exc:
            raise UpstreamFailure("timeout", f"the model sent nothing for {self.timeout:g} s") from exc
        except openai.APIStatusError as exc:
            raise UpstreamFailure("upstream_error", self._short(_error_message(exc.body)), exc.status_code) from exc
        except openai.APITimeoutError as exc:
            raise UpstreamFailure("timeout", f"the model sent nothing for {self.timeout:g} s") from exc
        except openai.APIConnectionError as exc:
            raise UpstreamFailure("connection", "the connection to the model was lost") from exc
        except openai.OpenAIError as exc:
            raise UpstreamFailure("upstream_error", self._short(type(exc).__name__)) from exc

    async def model_names(self) -> tuple[list[str], bool]:
        """The upstream's own model list (cached MODELS_CACHE_SECONDS) and whether it answered."""
        async with self._models_lock:
            if time.monotonic() - self._models.fetched_at < MODELS_CACHE_SECONDS:
                return self._models.names, self._models.reachable
            try:
                async with asyncio.timeout(MODELS_TIMEOUT_SECONDS):
                    page = await self.client.models.list()
                names = sorted({model.id for model in page.data})[:MAX_LISTED_MODELS]
                self._models = _ModelList(names, True, time.monotonic())
            except (openai.OpenAIError, TimeoutError):
                self._models = _ModelList([], False, time.monotonic())
            return self._models.names, self._models.reachable

    def _short(self, text: str) -> str:
        """At most MAX_ERROR_CHARS, with the API key removed should the upstream echo it."""
        if self._key:
            text = text.replace(self._key, "***")
        return text[:MAX_ERROR_CHARS]


def sent_as_is(messages: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `extra_body` of a Chat Completions call that carries its `messages` (the typed
    argument then is NO_MESSAGES, for the SDK's required arguments). The SDK merges extra_body
    into the JSON body after its request transform, which walks every message against the
    params' types, with the GIL held, for nothing (the chat message types have no fields it
    renames or reformats): about 0.13 ms a message here, so 130 ms for a 1,000-message
    conversation, during which no other request of the process moves. The body sent is the
    same JSON."""
    return {**(extra or {}), "messages": messages}


def _error_message(body: object) -> str:
    """The upstream's own error message (OpenAI's `{"error": {"message": ...}}` shape), else a
    generic one: the body itself is never passed on."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return "the model's server answered with an error"
