"""`chat-admin agents ...` against the test database: what it creates, users see. (Each run
starts a Python process: kept to three; list/show/delete share the service the REST tests cover.)"""

from __future__ import annotations

import json
from typing import Any

from httpx import AsyncClient

from app.core.config import Settings
from tests.admin.test_cli import _env, chat_admin
from tests.factories import make_user


async def test_agents_create_update_list_delete(client: AsyncClient, settings: Settings) -> None:
    env = _env(settings)
    created = await chat_admin(
        env,
        "agents",
        "create",
        "writer",
        "--model",
        "fake-small",
        "--instructions",
        "-",
        "--temperature",
        "0.3",
        stdin="Write well.",
    )
    assert created.returncode == 0, created.stderr
    agent: dict[str, Any] = json.loads(created.stdout)
    assert (agent["name"], agent["instructions"], agent["temperature"]) == ("writer", "Write well.", 0.3)
    updated = await chat_admin(env, "agents", "update", "writer", "--description", "Writes", "--clear", "temperature")
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["temperature"] is None

    user = await make_user(client)
    listed = (await client.get("/agents", headers=user.headers)).json()["items"]
    assert [(a["name"], a["description"]) for a in listed] == [("writer", "Writes")]
    bad = await chat_admin(env, "agents", "create", "Bad Name", "--model", "m")
    assert bad.returncode == 2 and "name" in bad.stderr
