"""Error responses for the OpenAPI document, described once and declared per router, so that
every status code an operation can answer is in its schema (the fuzz tests check that)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

Responses = dict[int | str, dict[str, Any]]
# RFC 6749 section 5.1: a response carrying a token or key must not be stored by any cache.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_DESCRIPTIONS = {
    400: "Invalid page cursor, a body that is not UTF-8 JSON, or a rule of the operation broken",
    401: "Missing, invalid, expired or revoked credentials",
    403: "Not allowed: a read-only API key writing, an API key on an account route, not an admin",
    404: "Not found, or not yours",
    408: "The request body arrived too slowly (BODY_READ_TIMEOUT_SECONDS)",
    409: (
        "The name is already taken, you hold the most API keys allowed (50), or a request with this "
        "Idempotency-Key is in flight (see Retry-After)"
    ),
    413: "The request body is larger than MAX_BODY_BYTES (ACCOUNT_MAX_BODY_BYTES on /auths and /admin)",
    429: "Too many attempts; see the Retry-After header",
    503: "The database did not answer in time, or the server is busy checking passwords (see Retry-After)",
}


class ErrorOut(BaseModel):
    detail: str


def error_responses(*status_codes: int) -> Responses:
    return {code: {"description": _DESCRIPTIONS[code], "model": ErrorOut} for code in status_codes}
