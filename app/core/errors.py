"""The application's exceptions and the one place they become `{"detail": ...}` responses.

    AppError                 500  (never raised directly)
    ├── BadRequest           400  e.g. a forged or stale page cursor
    ├── Unauthorized         401  missing, malformed or expired credentials
    ├── Forbidden            403
    ├── NotFound             404  missing, malformed or someone else's id: indistinguishable
    ├── Conflict             409  a unique name already taken; a keyed request still in flight
    ├── UnprocessableContent 422  a rule that spans fields (most 422s come from validation)
    ├── TooManyRequests      429  login or registration throttled; carries Retry-After
    ├── DatabaseUnavailable  503  the database did not answer in time
    └── ServerBusy           503  too many password checks waiting; carries Retry-After

422 (a body, query or path that does not validate) lists at most MAX_VALIDATION_ERRORS errors,
each with its `loc`, `msg` and `type` only: the input is never echoed back (it may hold a
password, and echoing it let a 1 MB body amplify into a 9.5 MB answer).
413 (body over its limit) and 408 (body too slow) come from BodyLimitMiddleware.
Driver errors that mean "the database is unreachable or too slow" are rendered as 503 too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError, WTimeoutError

log = logging.getLogger(__name__)


class AppError(Exception):
    status_code = 500
    detail = "Internal server error"
    headers: dict[str, str] | None = None

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)
        if detail is not None:
            self.detail = detail


class BadRequest(AppError):
    status_code = 400
    detail = "Bad request"


class Unauthorized(AppError):
    status_code = 401
    detail = "Not authenticated"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(AppError):
    status_code = 403
    detail = "Forbidden"


class NotFound(AppError):
    status_code = 404
    detail = "Not found"


class Conflict(AppError):
    status_code = 409
    detail = "Conflict"


class UnprocessableContent(AppError):
    """Rendered like a validation error: `detail` is a list of one `{loc, msg, type}`."""

    status_code = 422
    detail = "Unprocessable content"

    def __init__(self, detail: str | None = None, loc: tuple[str, ...] = ("body",)) -> None:
        super().__init__(detail)
        self.loc = loc


class TooManyRequests(AppError):
    status_code = 429
    detail = "Too many requests, try again later"

    def __init__(self, retry_after_seconds: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = max(1, retry_after_seconds)
        self.headers = {"Retry-After": str(self.retry_after)}


class DatabaseUnavailable(AppError):
    status_code = 503
    detail = "Database unavailable, try again shortly"


class ServerBusy(AppError):
    status_code = 503
    detail = "The server is busy; try again shortly"

    def __init__(self, retry_after_seconds: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(max(1, retry_after_seconds))}


UNAVAILABLE_ERRORS = (ConnectionFailure, ExecutionTimeout, WTimeoutError)
MAX_VALIDATION_ERRORS = 10
MAX_LOC_PARTS = 8
MAX_TEXT_CHARS = 120


def error_response(status_code: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if isinstance(exc, UnprocessableContent):
        detail = [{"loc": list(exc.loc), "msg": exc.detail, "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)
    return error_response(exc.status_code, exc.detail, exc.headers)


def _safe_text(value: object) -> str:
    """Short, and encodable as UTF-8 (a lone surrogate in a key name becomes "?")."""
    text = str(value)[:MAX_TEXT_CHARS]
    return text.encode("utf-8", "replace").decode("utf-8")


def _loc_part(part: object) -> str | int:
    return part if isinstance(part, int) and not isinstance(part, bool) else _safe_text(part)


def validation_details(errors: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first MAX_VALIDATION_ERRORS errors as {loc, msg, type}: no input, ctx or url."""
    details = []
    for error in errors[:MAX_VALIDATION_ERRORS]:
        loc = error.get("loc", ())
        details.append(
            {
                "loc": [_loc_part(part) for part in tuple(loc)[:MAX_LOC_PARTS]],
                "msg": _safe_text(error.get("msg", "Invalid value")),
                "type": _safe_text(error.get("type", "value_error")),
            }
        )
    return details


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    log.info("request did not validate", extra={"path": request.url.path, "errors": len(errors)})
    return JSONResponse({"detail": validation_details(errors), "error_count": len(errors)}, status_code=422)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, UNAVAILABLE_ERRORS):
        log.warning("database unavailable", extra={"error": type(exc).__name__, "path": request.url.path})
        return error_response(DatabaseUnavailable.status_code, DatabaseUnavailable.detail)
    log.exception("database error", extra={"path": request.url.path})
    return error_response(500, "Internal server error")


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """Last resort for a bug: logged with its traceback (and the request id), answered as JSON."""
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return error_response(500, "Internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(PyMongoError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
