"""Issue 19, row 16: request framing is refused when a proxy could read it differently (RFC
9112 sections 6.3 and 2.2): Content-Length with Transfer-Encoding (a smuggled second request
was served), and bare LF line endings. Over a real socket, through the protocol class
`chat-server` runs uvicorn with (app.core.http_protocol)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest_asyncio
import uvicorn
from fastapi import FastAPI

from app.core.http_protocol import with_header_deadline
from tests.server_process import free_port

SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest_asyncio.fixture
async def port(app: FastAPI) -> AsyncIterator[int]:
    number = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=number, lifespan="off", log_level="warning", http=with_header_deadline(10)
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield number
    server.should_exit = server.force_exit = True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(task, 10)


async def _exchange(port: int, raw: bytes) -> bytes:
    """Everything the server answers to `raw` until it closes the connection (or 3 s pass)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    received = b""
    with contextlib.suppress(TimeoutError, ConnectionError):
        while chunk := await asyncio.wait_for(reader.read(65536), 3):
            received += chunk
    writer.close()
    return received


async def test_content_length_with_chunked_is_a_400_and_nothing_is_smuggled(port: int) -> None:
    head = b"POST /chat/sessions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    smuggling = head + b"Content-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED
    answer = await _exchange(port, smuggling)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert answer.endswith(b'{"detail": "Invalid HTTP request received."}')
    assert answer.count(b"HTTP/1.1 ") == 1, "the smuggled request was served"
    assert b'"status":"ok"' not in answer


async def test_bare_lf_line_endings_are_a_400(port: int) -> None:
    answer = await _exchange(port, b"GET /healthz HTTP/1.1\nHost: t\n\n")
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    fine = await _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert fine.startswith(b"HTTP/1.1 200 ") and b'"status":"ok"' in fine
