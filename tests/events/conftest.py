"""A real HTTP server in the test's event loop (uvicorn, the app fixture's lifespan), so that
event streams are read as a client reads them: ASGITransport buffers streaming responses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest_asyncio
import uvicorn
from fastapi import FastAPI

from tests.core.test_faults import restartable  # noqa: F401 - the fault tests' restartable database, shared
from tests.server_process import free_port


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Serve an app whose lifespan is already running; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        await asyncio.wait_for(task, 10)


@pytest_asyncio.fixture
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    async with serve(app) as url:
        yield url
