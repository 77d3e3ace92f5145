"""What Client and AsyncClient share: configuration, the calls they make (method, path,
body, and whether a retry is safe), the retry policy and the state of the credentials.
Only the I/O differs between the two; it lives in _base_client.py and _async_client.py."""

from __future__ import annotations

import os
import random
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from chat_client._exceptions import APIConnectionError, APITimeoutError, retry_after_seconds

if TYPE_CHECKING:
    # Imported where a model is built: the request core (_base_client.py) runs without them.
    from chat_client._models import Appended, MessageIn, Session

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
# A Retry-After longer than this (a login lockout, say) is raised at once, not slept through.
MAX_RETRY_AFTER = 60.0
MAX_BATCH = 100
MESSAGES_PAGE = 1000
SEARCH_PAGE = 50
# The session stream sends a ping every 15 s when idle: a read this long without one is a dead connection.
STREAM_READ_TIMEOUT = 45.0
UPLOAD_CHUNK_BYTES = 1024 * 1024
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
ENV_URL = "CHAT_URL"
ENV_API_KEY = "CHAT_API_KEY"
ENV_USERNAME = "CHAT_USERNAME"
ENV_PASSWORD = "CHAT_PASSWORD"


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Upload:
    """A file sent as a request body, read in chunks (from the start again on a retry)."""

    path: Path
    on_progress: Callable[[int], None] | None = None  # called with each chunk's size

    def chunks(self) -> Iterator[bytes]:
        with self.path.open("rb") as file:
            while chunk := file.read(UPLOAD_CHUNK_BYTES):
                if self.on_progress is not None:
                    self.on_progress(len(chunk))
                yield chunk

    async def async_chunks(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks():  # local file reads of 1 MiB: not worth a thread
            yield chunk


@dataclass(frozen=True)
class Call:
    """One logical request. `idempotency_key` is sent on every attempt of it."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    form: dict[str, str] | None = None
    idempotency_key: str | None = None
    retryable: bool = True
    authenticated: bool = True
    upload: Upload | None = None

    def headers(self, bearer: str | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.upload is not None:
            headers["Content-Type"] = "application/octet-stream"  # the server tells the format by its first bytes
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        if self.idempotency_key is not None:
            headers["Idempotency-Key"] = self.idempotency_key
        return headers


def retry_delay(call: Call, attempt: int, max_retries: int, response: httpx.Response | None) -> float | None:
    """Seconds to wait before retrying `call` (None: do not retry). A response is retried on
    408, 429, 5xx and a 409 that says when to retry (a keyed request still in flight); no
    response (a connection error or timeout) always is, when the call may be retried."""
    if not call.retryable or attempt >= max_retries:
        return None
    if response is not None:
        in_flight = response.status_code == 409 and "retry-after" in response.headers
        if response.status_code not in RETRYABLE_STATUSES and not in_flight:
            return None
        after = retry_after_seconds(response)
        if after is not None:
            return after if after <= MAX_RETRY_AFTER else None
    backoff = min(MAX_RETRY_DELAY, INITIAL_RETRY_DELAY * 2**attempt)
    jittered: float = backoff * random.uniform(0.75, 1.0)
    return jittered


def connection_error(exc: httpx.TransportError) -> APIConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError()
    return APIConnectionError(f"Could not reach the chat server: {type(exc).__name__}")


@dataclass
class Credentials:
    """An API key, or a username and password traded for an access token (refreshed before
    it expires, or replaced by a new login when the refresh is refused)."""

    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    access_token: str | None = None
    access_expires_at: float = 0.0  # time.monotonic()
    refresh_token: str | None = None
    refresh_expires_at: float = 0.0
    _clock: Any = field(default=time.monotonic, repr=False)

    @property
    def logs_in(self) -> bool:
        return self.api_key is None and self.username is not None and self.password is not None

    def current(self) -> str | None:
        """The bearer to send now, if there is one that will not expire in the next moment."""
        if self.api_key is not None:
            return self.api_key
        if self.access_token is not None and self._clock() < self.access_expires_at:
            return self.access_token
        return None

    def usable_refresh_token(self) -> str | None:
        if self.refresh_token is not None and self._clock() < self.refresh_expires_at:
            return self.refresh_token
        return None

    def accept(self, tokens: dict[str, Any]) -> str:
        """Keep a login or refresh answer; refresh a minute (or a tenth of the lifetime) early."""
        now = self._clock()
        lifetime = float(tokens["expires_in"])
        self.access_token = str(tokens["access_token"])
        self.access_expires_at = now + lifetime - min(60.0, lifetime / 10)
        self.refresh_token = str(tokens["refresh_token"])
        self.refresh_expires_at = now + float(tokens["refresh_expires_in"]) - 60.0
        return self.access_token

    def forget(self) -> None:
        """The access token was refused: the next request refreshes (or logs in) first."""
        self.access_token = None

    def drop_refresh(self) -> None:
        self.refresh_token = None


def resolve(
    base_url: str | None, api_key: str | None, username: str | None, password: str | None
) -> tuple[str, Credentials]:
    """Arguments first, then CHAT_URL, CHAT_API_KEY, CHAT_USERNAME and CHAT_PASSWORD."""
    url = base_url or os.environ.get(ENV_URL) or DEFAULT_BASE_URL
    if api_key is None and username is None:
        api_key = os.environ.get(ENV_API_KEY) or None
        if api_key is None:
            username, password = os.environ.get(ENV_USERNAME), os.environ.get(ENV_PASSWORD)
    if api_key is not None and username is not None:
        raise ValueError("give an api_key or a username and password, not both")
    if username is not None and password is None:
        raise ValueError("a username needs a password")
    return url.rstrip("/"), Credentials(api_key=api_key, username=username, password=password)


def tls_verify(base_url: str) -> ssl.SSLContext | bool:
    """httpx's `verify` for a client that sends every request to `base_url` (redirects are
    not followed). Over plain http no certificate is checked, and loading the CA bundle
    (~20 ms, at every `chat` command) is skipped: the context given instead trusts no
    certificate, so a TLS connection through it would fail, never go unverified."""
    if urlsplit(base_url).scheme.lower() == "http":
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return True


# The calls, shared by both clients.


def login_call(credentials: Credentials) -> Call:
    assert credentials.username is not None and credentials.password is not None
    form = {"username": credentials.username, "password": credentials.password}
    return Call("POST", "/auths/login", form=form, authenticated=False)


def refresh_call(refresh_token: str) -> Call:
    # Never retried: a refresh token works once, and presenting it twice logs the session out.
    return Call("POST", "/auths/refresh", json={"refresh_token": refresh_token}, retryable=False, authenticated=False)


def session_id_of(session: str | Session) -> str:
    from chat_client._models import Session

    return session.id if isinstance(session, Session) else session


def create_session_call(
    name: str | None, title: str | None, platform: str | None, metadata: dict[str, Any] | None, key: str | None
) -> Call:
    body: dict[str, Any] = {}
    for field_name, value in (("name", name), ("title", title), ("platform", platform), ("metadata", metadata)):
        if value is not None:
            body[field_name] = value
    return Call("POST", "/chat/sessions", json=body, idempotency_key=key or new_idempotency_key())


def update_session_call(session_id: str, changes: dict[str, Any]) -> Call:
    return Call("PATCH", f"/chat/sessions/{session_id}", json=changes)


def append_call(session_id: str, message: MessageIn, key: str | None) -> Call:
    body = message.model_dump(mode="json")
    return Call(
        "POST", f"/chat/sessions/{session_id}/messages", json=body, idempotency_key=key or new_idempotency_key()
    )


def batch_calls(session_id: str, messages: Iterable[MessageIn | dict[str, Any]], key: str | None) -> Iterator[Call]:
    """One call per MAX_BATCH messages, each with its own key (the caller's key plus the
    chunk's number when there are several)."""
    from chat_client._models import MessageIn

    items = [m if isinstance(m, MessageIn) else MessageIn.model_validate(m) for m in messages]
    chunks = [items[i : i + MAX_BATCH] for i in range(0, len(items), MAX_BATCH)]
    for number, chunk in enumerate(chunks):
        chunk_key = (key if len(chunks) == 1 else f"{key}:{number}") if key else new_idempotency_key()
        body = {"messages": [m.model_dump(mode="json") for m in chunk]}
        yield Call("POST", f"/chat/sessions/{session_id}/messages/batch", json=body, idempotency_key=chunk_key)


def named_batch_calls(
    name: str,
    messages: Iterable[MessageIn | dict[str, Any]],
    session_fields: dict[str, Any],
    key: str | None,
) -> Iterator[Call]:
    """Like batch_calls, to the session of `name` (created with the first batch when new, with
    `session_fields`: title, platform and metadata when given)."""
    for call in batch_calls("", messages, key):
        assert call.json is not None
        yield named_call(name, call.json["messages"], session_fields, call.idempotency_key)


def named_call(name: str, messages: list[dict[str, Any]], session_fields: dict[str, Any], key: str | None) -> Call:
    """One request of named_batch_calls: up to MAX_BATCH messages, already as JSON."""
    fields = {field: value for field, value in session_fields.items() if value is not None}
    body = {"name": name, **fields, "messages": messages}
    return Call("POST", "/chat/sessions/by-name", json=body, idempotency_key=key or new_idempotency_key())


def combined(batches: list[Appended]) -> Appended:
    """What the batches of one `append_to` stored, as one."""
    from chat_client._models import Appended

    if not batches:
        raise ValueError("append_to needs at least one message")
    items = [message for batch in batches for message in batch.items]
    return Appended(session=batches[-1].session, created=batches[0].created, items=items)


def as_message(message: MessageIn | dict[str, Any] | str, role: str, metadata: dict[str, Any] | None) -> MessageIn:
    from chat_client._models import MessageIn

    if isinstance(message, MessageIn):
        return message
    if isinstance(message, dict):
        return MessageIn.model_validate(message)
    return MessageIn.model_validate({"content": message, "role": role, "metadata": metadata or {}})


def sessions_params(platform: str | None, page_size: int, cursor: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": page_size}
    if platform is not None:
        params["platform"] = platform
    if cursor is not None:
        params["cursor"] = cursor
    return params


def messages_params(after_seq: int, page_size: int, cursor: str | None) -> dict[str, Any]:
    return (
        {"limit": page_size, "cursor": cursor} if cursor is not None else {"limit": page_size, "after_seq": after_seq}
    )


def search_params(
    query: str, session_id: str | None, platform: str | None, page_size: int, cursor: str | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"q": query, "limit": page_size}
    for name, value in (("session_id", session_id), ("platform", platform), ("cursor", cursor)):
        if value is not None:
            params[name] = value
    return params


def create_api_key_call(
    name: str, scopes: Iterable[str], current_password: str, expires_in_days: int | None, key: str | None
) -> Call:
    body: dict[str, Any] = {"name": name, "scopes": list(scopes), "current_password": current_password}
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    return Call("POST", "/auths/api-keys", json=body, idempotency_key=key or new_idempotency_key())


def revoke_api_key_call(key_id: str | None) -> Call:
    """None: the API key the request is made with (`/auths/api-keys/current`)."""
    return Call("DELETE", f"/auths/api-keys/{key_id or 'current'}")


def import_call(path: str | Path, on_progress: Callable[[int], None] | None) -> Call:
    """Importing is idempotent on the server (by source ids), so a retry is safe."""
    return Call("POST", "/chat/import", upload=Upload(Path(path), on_progress))


def stream_timeout(timeout: float) -> httpx.Timeout:
    return httpx.Timeout(timeout, read=STREAM_READ_TIMEOUT)


def timeout_of(call: Call, stream: bool, timeout: float) -> float | httpx.Timeout:
    """An upload waits for its answer as long as the server works (an import of 50 MB takes
    minutes; the server bounds it by IMPORT_MAX_BYTES); a stream as long as it pings."""
    if call.upload is not None:
        return httpx.Timeout(timeout, read=None)
    return stream_timeout(timeout) if stream else timeout
