"""The app with a model configured: a fake OpenAI-compatible upstream (a real HTTP server) and
an agent `helper` that uses it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pytest_asyncio
from httpx import AsyncClient
from pydantic import SecretStr
from pymongo.asynchronous.database import AsyncDatabase

from app.core.config import Settings
from app.core.db import Document
from tests.assistant.fake_upstream import FakeUpstream
from tests.factories import TestUser, make_admin

UPSTREAM_KEY = "sk-test-secret-key-0123456789"


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, upstream: FakeUpstream) -> Settings:
    return settings.model_copy(
        update={
            "model_base_url": upstream.base_url,
            "model_api_key": SecretStr(UPSTREAM_KEY),
            "model_timeout_seconds": 2.0,
        }
    )


@pytest_asyncio.fixture
async def admin(client: AsyncClient, db: AsyncDatabase[Document]) -> TestUser:
    return await make_admin(client, db)


@pytest_asyncio.fixture
async def agent(client: AsyncClient, admin: TestUser) -> dict[str, Any]:
    body = {"name": "helper", "model": "fake-small", "instructions": "You are helpful.", "description": "Helps"}
    response = await client.post("/admin/agents", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
