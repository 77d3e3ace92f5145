"""An export's body as it goes out: gathered into chunks of CHUNK_BYTES, with a turn of the
event loop between chunks, so that a client gone away is noticed before the next write (not
after hundreds of writes to a dead socket, each logged by asyncio), and one log line says so.
A database failure after the response has started cannot change its status: the body ends
with an error the client can see (`error_tail`), never cut in the middle."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable

from pymongo.errors import PyMongoError

from app.core.errors import UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)
CHUNK_BYTES = 64 * 1024
UNAVAILABLE = "The database did not answer in time: this export is incomplete; try again"
FAILED = "Internal error: this export is incomplete"
ErrorTail = Callable[[str], bytes]


async def streamed(body: AsyncIterator[bytes], error_tail: ErrorTail) -> AsyncIterator[bytes]:
    pending = bytearray()
    try:
        async for piece in body:
            pending += piece
            if len(pending) >= CHUNK_BYTES:
                yield bytes(pending)
                pending.clear()
                await asyncio.sleep(0)  # lets a lost connection be seen before the next write
    except UNAVAILABLE_ERRORS:
        log.warning("an export stopped: the database did not answer in time")
        pending += error_tail(UNAVAILABLE)
    except PyMongoError:
        log.exception("an export stopped: database error")
        pending += error_tail(FAILED)
    except (asyncio.CancelledError, GeneratorExit):
        log.info("an export stopped: the client disconnected")
        raise
    if pending:
        yield bytes(pending)


def _detail(detail: str) -> str:
    return json.dumps({"detail": detail})


def ndjson_error(detail: str) -> bytes:
    """The last line of an NDJSON export that failed: `{"type": "error", "detail": ...}`."""
    return json.dumps({"type": "error", "detail": detail}).encode() + b"\n"


def json_error(detail: str) -> bytes:
    """Closes `{"session": ..., "messages": [...` with `], "error": {"detail": ...}}`."""
    return b'],"error":' + _detail(detail).encode() + b"}\n"


def markdown_error(detail: str) -> bytes:
    return f"\n---\n\n**{detail}**\n".encode()
