"""Client's request core: its configuration, credentials, and sending one call with retries.

Apart from the API (_client.py) because it never needs the response models: `chat append`
sends its call through it and prints a line from the server's JSON without importing pydantic
(~90 ms of a start). AsyncClient's core is in _async_client.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

import httpx

from chat_client import _core
from chat_client._core import Call, Credentials
from chat_client._exceptions import APIConnectionError, APIStatusError, AuthenticationFailed, from_response


class BaseClient:
    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = _core.DEFAULT_TIMEOUT,
        max_retries: int = _core.DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url, self._credentials = _core.resolve(base_url, api_key, username, password)
        self.timeout = timeout
        self.max_retries = max_retries
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, verify=_core.tls_verify(self.base_url))
        self._auth_lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _send(self, call: Call) -> httpx.Response:
        response = self._request(call, stream=False)
        return response

    @contextmanager
    def _stream(self, call: Call) -> Iterator[httpx.Response]:
        response = self._request(call, stream=True)
        try:
            yield response
        finally:
            response.close()

    def _request(self, call: Call, stream: bool) -> httpx.Response:
        attempt, reauthenticated = 0, False
        timeout = _core.timeout_of(call, stream, self.timeout)
        while True:
            bearer = self._bearer() if call.authenticated else None
            request = self._http.build_request(
                call.method,
                self.base_url + call.path,
                params=call.params,
                json=call.json,
                data=call.form,
                content=call.upload.chunks() if call.upload is not None else None,
                headers=call.headers(bearer),
                timeout=timeout,
            )
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = _core.retry_delay(call, attempt, self.max_retries, None)
                if delay is None:
                    raise _core.connection_error(exc) from exc
                time.sleep(delay)
                attempt += 1
                continue
            if response.is_success:
                return response
            response.read()
            response.close()
            if response.status_code == 401 and call.authenticated and self._credentials.logs_in and not reauthenticated:
                self._credentials.forget()  # refused (revoked, or expired early): one fresh token, once
                reauthenticated = True
                continue
            delay = _core.retry_delay(call, attempt, self.max_retries, response)
            if delay is None:
                raise from_response(response)
            time.sleep(delay)
            attempt += 1

    def _bearer(self) -> str | None:
        """The API key, or a fresh access token: refreshed before it expires; when the
        refresh is refused, one new login; when that is refused, AuthenticationFailed."""
        with self._auth_lock:
            credentials = self._credentials
            current = credentials.current()
            if current is not None or not credentials.logs_in:
                return current
            refresh_token = credentials.usable_refresh_token()
            credentials.drop_refresh()  # used once, whatever happens
            if refresh_token is not None:
                try:
                    return credentials.accept(self._send(_core.refresh_call(refresh_token)).json())
                except (APIStatusError, APIConnectionError):
                    pass  # refused or unknown: log in again instead, once
            return credentials.accept(self._log_in(credentials))

    def _log_in(self, credentials: Credentials) -> dict[str, Any]:
        try:
            tokens: dict[str, Any] = self._send(_core.login_call(credentials)).json()
        except APIStatusError as exc:
            if exc.status_code in (400, 401, 403, 422):
                raise AuthenticationFailed(f"login refused for {credentials.username!r}: {exc}") from exc
            raise
        return tokens
