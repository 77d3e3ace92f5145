"""Errors on /v1 in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with the
status codes OpenAI uses, so that the SDKs raise their own exception types (BadRequestError,
AuthenticationError, PermissionDeniedError, NotFoundError, ConflictError, RateLimitError, ...).

Rendered by the /v1 routes themselves (OpenAIRoute), so the rest of the app keeps its
`{"detail": ...}` errors. Like those, a message never holds the input: a validation error
names the parameter's path and the rule it broke.

    400 invalid_request_error   a body, query or path that does not validate, a bad cursor
    401 authentication_error    missing, invalid, expired or revoked credentials
    403 permission_error        a read-only API key writing
    404 invalid_request_error   a conversation or item that does not exist, or is not yours
    409 invalid_request_error   an Idempotency-Key still in flight (Retry-After)
    429 rate_limit_error        throttled (Retry-After)
    500 server_error            a bug (logged with the request id)
    503 server_error            the database did not answer in time
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException

from app.core.errors import (
    UNAVAILABLE_ERRORS,
    AppError,
    BadRequest,
    DatabaseUnavailable,
    UnprocessableContent,
    validation_details,
)
from app.core.responses import Responses, error_responses
from app.openai_compat.schemas import OpenAIError

log = logging.getLogger(__name__)

_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
_CODES = {401: "invalid_api_key", 404: "not_found", 409: "conflict", 429: "rate_limit_exceeded"}


_DESCRIPTIONS = {
    400: "Invalid body, query or path (`param` names it), or an Idempotency-Key reused for another request",
    401: "Missing, invalid, expired or revoked credentials",
    403: "A read-only API key writing",
    404: "Not found, or not yours",
    409: "A request with this Idempotency-Key is in flight (see Retry-After), or the session's reply is being written",
    429: "Too many of your replies are being generated (MODEL_MAX_PER_USER; see Retry-After)",
    503: "The database did not answer in time",
}


def openai_error_responses(*status_codes: int) -> Responses:
    """Error responses for the OpenAPI document, in OpenAI's shape; 408 and 413 come from the
    body limit, before any route, in the app's `{"detail"}` shape."""
    responses: Responses = {code: {"description": _DESCRIPTIONS[code], "model": OpenAIError} for code in status_codes}
    return responses | error_responses(408, 413)


class InvalidParameter(BadRequest):
    """A 400 naming the parameter at fault (`items[2].content`), never its value."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def error_body(status_code: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    error_type = _TYPES.get(status_code, "server_error" if status_code >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": error_type, "param": param, "code": code or _CODES.get(status_code)}}


def error_response(
    status_code: int, message: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status_code, message, param), status_code=status_code, headers=headers)


def _param(loc: Sequence[object]) -> str | None:
    """`["body", "items", 2, "content"]` -> `items[2].content`; a query or path parameter by its name."""
    parts = [part for part in loc if part not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    details = validation_details(exc.errors())
    if not details:
        return error_response(400, "Invalid request")
    first = details[0]
    param = _param(first["loc"])
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    message = f"Invalid '{param}': {first['msg']}{more}" if param else f"{first['msg']}{more}"
    return error_response(400, message, param)


def _app_error_response(exc: AppError) -> JSONResponse:
    if isinstance(exc, InvalidParameter):
        return error_response(400, exc.detail, exc.param)
    if isinstance(exc, UnprocessableContent):  # a rule across fields, or a reused Idempotency-Key
        return error_response(400, exc.detail, _param(exc.loc), exc.headers)
    return error_response(exc.status_code, exc.detail, headers=exc.headers)


def openai_error_response(request: Request, exc: Exception) -> Response:
    if isinstance(exc, RequestValidationError):
        log.info("request did not validate", extra={"path": request.url.path, "errors": len(exc.errors())})
        return _validation_response(exc)
    if isinstance(exc, AppError):
        return _app_error_response(exc)
    if isinstance(exc, HTTPException):  # FastAPI's own, e.g. a body that is not UTF-8 JSON
        return error_response(exc.status_code, str(exc.detail), headers=dict(exc.headers) if exc.headers else None)
    if isinstance(exc, UNAVAILABLE_ERRORS):
        log.warning("database unavailable", extra={"error": type(exc).__name__, "path": request.url.path})
        return error_response(503, DatabaseUnavailable.detail)
    if isinstance(exc, PyMongoError):
        log.exception("database error", extra={"path": request.url.path})
    else:
        log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return error_response(500, "Internal server error")


class OpenAIRoute(APIRoute):
    """A route whose errors (its dependencies' too: authentication, scopes) are OpenAI-shaped."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # every error of a /v1 route is answered in OpenAI's shape
                return openai_error_response(request, exc)

        return handle
