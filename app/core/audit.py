"""Audit log lines: one structured record per security-relevant event, on the `app.audit`
logger, with the request id (when there is a request). Callers pass identifiers and outcomes,
never secrets: no passwords, tokens, keys or hashes. A failed login names the account only
when it exists (an unknown name is often a password typed into the wrong field); a lockout
names the account guessed at, since that is what an operator needs to know."""

from __future__ import annotations

import logging

from app.core.logging import request_id_var

log = logging.getLogger("app.audit")
Value = str | int | bool | None | list[str]


def audit(event: str, **fields: Value) -> None:
    log.info(event, extra={"audit": True, "event": event, "request_id": request_id_var.get(), **fields})
