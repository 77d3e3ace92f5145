"""Every error the client raises, in one tree (status codes map to classes in `from_response`).

    ChatError
    ├── APIConnectionError        the server could not be reached, or the connection broke
    │   └── APITimeoutError       no answer in time
    ├── AuthenticationFailed      no usable credentials: login or refresh refused (also a 401)
    └── APIStatusError            the server answered with an error status (`status_code`, `detail`)
        ├── BadRequest            400  e.g. a stale or forged cursor
        ├── Unauthorized          401  invalid, expired or revoked credentials
        ├── PermissionDenied      403  e.g. a read-only API key writing
        ├── NotFound              404  missing, or someone else's: alike
        ├── Conflict              409  a name already taken; a keyed request still in flight
        ├── PayloadTooLarge       413
        ├── UnprocessableEntity   422  invalid input (`detail` lists where and why)
        ├── RateLimited           429  `retry_after` seconds
        ├── InternalServerError   500 and other 5xx
        └── Unavailable           503  the database or the server is busy (`retry_after`)

`detail` is the server's `{"detail": ...}`: a string, or for 422 a list of `{loc, msg, type}`.
"""

from __future__ import annotations

from typing import Any

import httpx


class ChatError(Exception):
    """Base of every error this package raises."""


class APIConnectionError(ChatError):
    def __init__(self, message: str = "Could not connect to the chat server") -> None:
        super().__init__(message)


class APITimeoutError(APIConnectionError):
    def __init__(self, message: str = "The chat server did not answer in time") -> None:
        super().__init__(message)


class APIStatusError(ChatError):
    status_code: int = 0

    def __init__(self, response: httpx.Response, detail: Any) -> None:
        self.response = response
        self.status_code = response.status_code
        self.detail = detail
        super().__init__(f"{response.status_code}: {describe(detail)}")

    @property
    def retry_after(self) -> float | None:
        """The server's Retry-After in seconds, when it sent one."""
        return retry_after_seconds(self.response)


class AuthenticationFailed(ChatError):
    """Login (or refresh, then login) was refused: wrong password, disabled account, lockout."""


class BadRequest(APIStatusError):
    pass


class Unauthorized(APIStatusError):
    pass


class PermissionDenied(APIStatusError):
    pass


class NotFound(APIStatusError):
    pass


class Conflict(APIStatusError):
    pass


class PayloadTooLarge(APIStatusError):
    pass


class UnprocessableEntity(APIStatusError):
    pass


class RateLimited(APIStatusError):
    pass


class InternalServerError(APIStatusError):
    pass


class Unavailable(APIStatusError):
    pass


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: UnprocessableEntity,
    429: RateLimited,
    503: Unavailable,
}


def from_response(response: httpx.Response) -> APIStatusError:
    """The exception for an error response (the body must have been read)."""
    try:
        detail = response.json().get("detail", response.reason_phrase)
    except (ValueError, AttributeError):
        detail = response.reason_phrase or f"HTTP {response.status_code}"
    kind = _BY_STATUS.get(response.status_code)
    if kind is None:
        kind = InternalServerError if response.status_code >= 500 else APIStatusError
    return kind(response, detail)


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def describe(detail: Any) -> str:
    """A one-line account of a `detail`: the string, or for a 422 the places and reasons."""
    if isinstance(detail, list):
        parts = []
        for error in detail:
            if isinstance(error, dict):
                where = ".".join(str(part) for part in error.get("loc", []) if part != "body")
                parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
        return "; ".join(parts) or "invalid input"
    return str(detail)
