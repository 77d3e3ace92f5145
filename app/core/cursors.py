"""Opaque, tamper-evident page cursors: base64url(JSON) plus an HMAC of it.

Clients get a string they cannot read meaning into or forge; a cursor that was altered, made
up, or minted for another list answers 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Annotated, Any

from fastapi import Depends, Request

from app.core.errors import BadRequest

_SIGNATURE_BYTES = 12


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"page-cursor:" + secret.encode()).digest()

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]

    def encode(self, kind: str, values: dict[str, Any]) -> str:
        payload = json.dumps({"k": kind, **values}, separators=(",", ":")).encode()
        return f"{_b64encode(payload)}.{_b64encode(self._sign(payload))}"

    def decode(self, kind: str, cursor: str) -> dict[str, Any]:
        """The values of a cursor minted by `encode(kind, ...)`; BadRequest for anything else."""
        try:
            payload_text, signature_text = cursor.split(".")
            payload, signature = _b64decode(payload_text), _b64decode(signature_text)
        except (ValueError, binascii.Error) as exc:
            raise BadRequest("Invalid cursor") from exc
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise BadRequest("Invalid cursor")
        values = json.loads(payload)
        if not isinstance(values, dict) or values.pop("k", None) != kind:
            raise BadRequest("Invalid cursor")
        return values


async def _cursor_codec(request: Request) -> CursorCodec:
    codec: CursorCodec = request.app.state.cursor_codec
    return codec


Cursors = Annotated[CursorCodec, Depends(_cursor_codec)]
