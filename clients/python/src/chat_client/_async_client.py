"""The asynchronous client: Client's API (see _client.py) with `await` and `async for`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import EventSource

from chat_client import _core
from chat_client._core import Call, Credentials
from chat_client._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationFailed,
    NotFound,
    from_response,
)
from chat_client._models import (
    Agent,
    ApiKeyCreated,
    Appended,
    ImportReport,
    Message,
    MessageIn,
    Page,
    SearchHit,
    Session,
    User,
)
from chat_client._replies import ReplyReader, ask_call, cancel_call
from chat_client._stream import FollowState


class AsyncClient:
    """A chat server over HTTP, as one user: an API key, or a username and password.

    >>> async with AsyncClient("http://127.0.0.1:8000", api_key="cak_...") as chat:
    ...     session = await chat.session(name="cli-run-1", platform="cli")
    ...     await chat.append(session, "Hello")

    Arguments default to the environment: CHAT_URL, CHAT_API_KEY, or CHAT_USERNAME and
    CHAT_PASSWORD. Failed requests raise the exceptions in chat_client (see _exceptions.py);
    connection errors, timeouts, 408, 429, 5xx and in-flight 409s are retried `max_retries`
    times with exponential backoff and jitter (honouring Retry-After), with the same
    Idempotency-Key, so a retried create is never stored twice.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = _core.DEFAULT_TIMEOUT,
        max_retries: int = _core.DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url, self._credentials = _core.resolve(base_url, api_key, username, password)
        self.timeout = timeout
        self.max_retries = max_retries
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout, verify=_core.tls_verify(self.base_url))
        self._auth_lock = asyncio.Lock()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # Sessions

    async def session(
        self,
        name: str,
        *,
        platform: str | None = None,
        metadata: dict[str, Any] | None = None,
        title: str | None = None,
        idempotency_key: str | None = None,
    ) -> Session:
        """Your session of this name, created (with the platform, metadata and title) when you
        have none: get-or-create, race-free on the server."""
        return await self._session(_core.create_session_call(name, title, platform, metadata, idempotency_key))

    async def create_session(
        self,
        title: str,
        *,
        platform: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Session:
        return await self._session(_core.create_session_call(None, title, platform, metadata, idempotency_key))

    async def get_session(self, session: str | Session) -> Session:
        return await self._session(Call("GET", f"/chat/sessions/{_core.session_id_of(session)}"))

    async def find_session(self, name: str) -> Session | None:
        """Your session of this name, or None (nothing is created)."""
        page = Page[Session].model_validate_json(
            (await self._send(Call("GET", "/chat/sessions", {"name": name}))).content
        )
        return page.items[0] if page.items else None

    async def update_session(self, session: str | Session, **changes: Any) -> Session:
        """title=, name= (None removes it), metadata= (a JSON Merge Patch)."""
        return await self._session(_core.update_session_call(_core.session_id_of(session), changes))

    async def delete_session(self, session: str | Session) -> None:
        await self._send(Call("DELETE", f"/chat/sessions/{_core.session_id_of(session)}"))

    async def sessions(self, *, platform: str | None = None, page_size: int = 50) -> AsyncIterator[Session]:
        """Every session, most recently active first, page after page as you iterate."""
        cursor: str | None = None
        while True:
            params = _core.sessions_params(platform, page_size, cursor)
            page = Page[Session].model_validate_json((await self._send(Call("GET", "/chat/sessions", params))).content)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # Messages

    async def append_to(
        self,
        name: str,
        messages: Iterable[MessageIn | dict[str, Any]],
        *,
        platform: str | None = None,
        metadata: dict[str, Any] | None = None,
        title: str | None = None,
        idempotency_key: str | None = None,
    ) -> Appended:
        """Append to your session of this name, 100 per request. When you have none, it is
        created (with the platform, metadata and title) in the same transaction as the first
        batch: a refused request stores nothing, not even an empty session."""
        fields = {"platform": platform, "metadata": metadata, "title": title}
        calls = _core.named_batch_calls(name, messages, fields, idempotency_key)
        return _core.combined([Appended.model_validate_json((await self._send(call)).content) for call in calls])

    async def append(
        self,
        session: str | Session,
        content: str,
        *,
        role: str = "user",
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Message:
        message = _core.as_message(content, role, metadata)
        call = _core.append_call(_core.session_id_of(session), message, idempotency_key)
        return Message.model_validate_json((await self._send(call)).content)

    async def append_many(
        self,
        session: str | Session,
        messages: Iterable[MessageIn | dict[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> list[Message]:
        """Append in order, 100 per request (each batch is stored whole or not at all)."""
        stored: list[Message] = []
        for call in _core.batch_calls(_core.session_id_of(session), messages, idempotency_key):
            stored += Page[Message].model_validate_json((await self._send(call)).content).items
        return stored

    async def messages(
        self, session: str | Session, *, after_seq: int = 0, page_size: int = _core.MESSAGES_PAGE
    ) -> AsyncIterator[Message]:
        """The session's messages after `after_seq`, oldest first, page after page."""
        path = f"/chat/sessions/{_core.session_id_of(session)}/messages"
        cursor: str | None = None
        while True:
            params = _core.messages_params(after_seq, page_size, cursor)
            page = Page[Message].model_validate_json((await self._send(Call("GET", path, params))).content)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def clear_messages(self, session: str | Session) -> None:
        """Delete all the session's messages (the session stays; the next message is seq 1)."""
        await self._send(Call("DELETE", f"/chat/sessions/{_core.session_id_of(session)}/messages"))

    async def follow(
        self, session: str | Session, *, after_seq: int | None = None, max_reconnects: int = 10
    ) -> AsyncIterator[Message]:
        """The session's messages as they arrive, from its event stream: those after
        `after_seq` first (default: only new ones). A dropped connection is resumed from the
        last seq received, so nothing is missed or repeated; `max_reconnects` failures in a row
        raise. Ends when the session is deleted."""
        session_id = _core.session_id_of(session)
        if after_seq is None:
            after_seq = (await self.get_session(session_id)).message_count
        state = FollowState(after_seq, max_reconnects)
        while True:
            try:
                async with self._stream(state.call(session_id)) as response:
                    state.connected()
                    async for event in EventSource(response).aiter_sse():
                        message = state.accept(event)
                        if message is not None:
                            yield message
                        elif state.must_reconnect:
                            break
            except NotFound:
                if state.ever_connected:
                    return  # the session was deleted
                raise
            except (APIConnectionError, httpx.TransportError) as exc:
                await asyncio.sleep(state.failed(exc))
                continue
            await asyncio.sleep(state.ended())

    async def search(
        self,
        query: str,
        *,
        session: str | Session | None = None,
        platform: str | None = None,
        page_size: int = _core.SEARCH_PAGE,
    ) -> AsyncIterator[SearchHit]:
        """`GET /chat/search`: every hit, newest first, page after page as you iterate (a page
        may hold fewer hits than `page_size`, even none, before the next one)."""
        session_id = _core.session_id_of(session) if session is not None else None
        cursor: str | None = None
        while True:
            params = _core.search_params(query, session_id, platform, page_size, cursor)
            response = await self._send(Call("GET", "/chat/search", params))
            page = Page[SearchHit].model_validate_json(response.content)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # Replies the server generates

    async def ask(
        self,
        session: str | Session,
        text: str,
        *,
        agent: str | None = None,
        model: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Message:
        """Store `text` and have the server reply (the session's agent, or `agent` / `model`):
        the final reply message (its `status` says whether it completed)."""
        reader = ReplyReader()
        async for _ in self._reply_deltas(session, text, agent, model, metadata, idempotency_key, reader, None):
            pass
        assert reader.final is not None
        return reader.final

    async def stream_reply(
        self,
        session: str | Session,
        text: str,
        *,
        agent: str | None = None,
        model: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        on_created: Callable[[Message, Message], None] | None = None,
    ) -> AsyncIterator[str]:
        """Like `ask`, yielding the reply's text as it is written. `on_created(message, reply)`
        is called once both are stored (the reply's id is what `cancel_reply` takes)."""
        reader = ReplyReader()
        async for delta in self._reply_deltas(
            session, text, agent, model, metadata, idempotency_key, reader, on_created
        ):
            yield delta

    async def cancel_reply(self, session: str | Session, message_id: str) -> Message:
        """Stop a reply being generated; the reply as it stopped."""
        call = cancel_call(_core.session_id_of(session), message_id)
        return Message.model_validate_json((await self._send(call)).content)

    async def agents(self) -> list[Agent]:
        """The agents you may ask for a reply."""
        return Page[Agent].model_validate_json((await self._send(Call("GET", "/agents"))).content).items

    async def _reply_deltas(
        self,
        session: str | Session,
        text: str,
        agent: str | None,
        model: str | None,
        metadata: dict[str, Any] | None,
        key: str | None,
        reader: ReplyReader,
        on_created: Callable[[Message, Message], None] | None,
    ) -> AsyncIterator[str]:
        call = ask_call(_core.session_id_of(session), _core.as_message(text, "user", metadata), agent, model, key)
        for attempt in range(self.max_retries + 1):
            try:
                async with self._stream(call) as response:
                    reader.connected()
                    async for event in EventSource(response).aiter_sse():
                        had_reply = reader.reply is not None
                        delta = reader.accept(event)
                        if not had_reply and reader.reply is not None and on_created is not None:
                            assert reader.question is not None
                            on_created(reader.question, reader.reply)
                        if delta:
                            yield delta
                        if reader.final is not None:
                            return
            except (APIConnectionError, httpx.TransportError):
                if attempt == self.max_retries:
                    raise
            await asyncio.sleep(_core.INITIAL_RETRY_DELAY * 2**attempt)
        raise APIConnectionError("the reply stream kept dropping")

    # Export and account

    async def export_lines(self) -> AsyncIterator[str]:
        """`GET /chat/export` as it streams: NDJSON lines, the header first."""
        async with self._stream(Call("GET", "/chat/export")) as response:
            async for line in response.aiter_lines():
                yield line

    async def import_file(self, path: str | Path, on_progress: Callable[[int], None] | None = None) -> ImportReport:
        """Import our NDJSON export or a ChatGPT export (conversations.json or its zip), sent as
        it is read; `on_progress` gets each chunk's size. Safe to repeat: nothing is imported twice."""
        response = await self._send(_core.import_call(path, on_progress))
        return ImportReport.model_validate_json(response.content)

    async def me(self) -> User:
        return User.model_validate_json((await self._send(Call("GET", "/auths/me"))).content)

    async def create_api_key(
        self,
        name: str,
        *,
        current_password: str,
        scopes: Iterable[str] = ("read", "write"),
        expires_in_days: int | None = None,
        idempotency_key: str | None = None,
    ) -> ApiKeyCreated:
        """A new API key (needs a login, not a key, and the password again); its `key` is shown once.
        `expires_in_days` None: the server's default lifetime."""
        call = _core.create_api_key_call(name, scopes, current_password, expires_in_days, idempotency_key)
        return ApiKeyCreated.model_validate_json((await self._send(call)).content)

    async def revoke_api_key(self, key_id: str | None = None) -> None:
        """Revoke one of your keys (with a login); None: the API key this client uses."""
        await self._send(_core.revoke_api_key_call(key_id))

    async def logout(self) -> None:
        """End this client's login session on the server (its refresh token stops working)."""
        await self._send(Call("POST", "/auths/logout", retryable=False))
        self._credentials.forget()
        self._credentials.drop_refresh()

    # The request core

    async def _session(self, call: Call) -> Session:
        return Session.model_validate_json((await self._send(call)).content)

    async def _send(self, call: Call) -> httpx.Response:
        response = await self._request(call, stream=False)
        return response

    @asynccontextmanager
    async def _stream(self, call: Call) -> AsyncIterator[httpx.Response]:
        response = await self._request(call, stream=True)
        try:
            yield response
        finally:
            await response.aclose()

    async def _request(self, call: Call, stream: bool) -> httpx.Response:
        attempt, reauthenticated = 0, False
        timeout = _core.timeout_of(call, stream, self.timeout)
        while True:
            bearer = await self._bearer() if call.authenticated else None
            request = self._http.build_request(
                call.method,
                self.base_url + call.path,
                params=call.params,
                json=call.json,
                data=call.form,
                content=call.upload.async_chunks() if call.upload is not None else None,
                headers=call.headers(bearer),
                timeout=timeout,
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = _core.retry_delay(call, attempt, self.max_retries, None)
                if delay is None:
                    raise _core.connection_error(exc) from exc
                await asyncio.sleep(delay)
                attempt += 1
                continue
            if response.is_success:
                return response
            await response.aread()
            await response.aclose()
            if response.status_code == 401 and call.authenticated and self._credentials.logs_in and not reauthenticated:
                self._credentials.forget()  # refused (revoked, or expired early): one fresh token, once
                reauthenticated = True
                continue
            delay = _core.retry_delay(call, attempt, self.max_retries, response)
            if delay is None:
                raise from_response(response)
            await asyncio.sleep(delay)
            attempt += 1

    async def _bearer(self) -> str | None:
        """The API key, or a fresh access token: refreshed before it expires; when the
        refresh is refused, one new login; when that is refused, AuthenticationFailed."""
        async with self._auth_lock:
            credentials = self._credentials
            current = credentials.current()
            if current is not None or not credentials.logs_in:
                return current
            refresh_token = credentials.usable_refresh_token()
            credentials.drop_refresh()  # used once, whatever happens
            if refresh_token is not None:
                try:
                    return credentials.accept((await self._send(_core.refresh_call(refresh_token))).json())
                except (APIStatusError, APIConnectionError):
                    pass  # refused or unknown: log in again instead, once
            return credentials.accept(await self._log_in(credentials))

    async def _log_in(self, credentials: Credentials) -> dict[str, Any]:
        try:
            tokens: dict[str, Any] = (await self._send(_core.login_call(credentials))).json()
        except APIStatusError as exc:
            if exc.status_code in (400, 401, 403, 422):
                raise AuthenticationFailed(f"login refused for {credentials.username!r}: {exc}") from exc
            raise
        return tokens
