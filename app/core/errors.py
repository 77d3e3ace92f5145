"""The application's exceptions and the one place they become `{"detail": ...}` responses.

    AppError                 500  (never raised directly)
    ├── BadRequest           400  e.g. a forged or stale page cursor
    ├── Unauthorized         401  missing, malformed or expired credentials
    ├── Forbidden            403
    ├── NotFound             404  missing, malformed or someone else's id: indistinguishable
    ├── Conflict             409  a unique name already taken; a keyed request still in flight
    ├── UnprocessableContent 422  a rule that spans fields (most 422s come from validation)
    ├── TooManyRequests      429  login or registration throttled; carries Retry-After
    └── DatabaseUnavailable  503  the database did not answer in time

413 (body over MAX_BODY_BYTES) and 408 (body too slow) come from BodyLimitMiddleware.
Driver errors that mean "the database is unreachable or too slow" are rendered as 503 too.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
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


UNAVAILABLE_ERRORS = (ConnectionFailure, ExecutionTimeout, WTimeoutError)


def error_response(status_code: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if isinstance(exc, UnprocessableContent):
        detail = [{"loc": list(exc.loc), "msg": exc.detail, "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)
    return error_response(exc.status_code, exc.detail, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    """422 saying where and why, never the rejected value: FastAPI's default answer carries
    each error's `input` (and `ctx`, which can quote it), e.g. 16 KB of metadata sent back."""
    assert isinstance(exc, RequestValidationError)
    detail = [{key: error[key] for key in ("type", "loc", "msg") if key in error} for error in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)


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
