"""The app with a fake OpenAI-compatible upstream and an agent `helper` (issue 16's fixtures),
a user, and the official `openai` SDK speaking to the app's /v1 over ASGI as that user."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from openai import AsyncOpenAI

from tests.assistant.conftest import admin, agent, settings, upstream
from tests.factories import TestUser, make_user

__all__ = ["admin", "agent", "settings", "upstream"]


@pytest_asyncio.fixture
async def user(client: AsyncClient) -> TestUser:
    return await make_user(client)


@pytest_asyncio.fixture
async def sdk(app: FastAPI, user: TestUser) -> AsyncIterator[AsyncOpenAI]:
    http = AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")
    async with AsyncOpenAI(base_url="http://testserver/v1", api_key=user.token, http_client=http, max_retries=0) as c:
        yield c
