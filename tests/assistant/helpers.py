"""Waiting for replies (polled with a deadline, never a fixed sleep) and reading SSE bodies."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from httpx import AsyncClient

from tests.factories import TestUser

DEADLINE_SECONDS = 30.0


async def reply_of(client: AsyncClient, user: TestUser, session_id: str, message_id: str) -> dict[str, Any]:
    response = await client.get(f"/chat/sessions/{session_id}/messages", params={"limit": 1000}, headers=user.headers)
    assert response.status_code == 200, response.text
    found = [m for m in response.json()["items"] if m["_id"] == message_id]
    assert found, "the reply is not stored"
    return found[0]


async def wait_for_reply(
    client: AsyncClient, user: TestUser, session_id: str, message_id: str, deadline: float = DEADLINE_SECONDS
) -> dict[str, Any]:
    """The reply once it has ended (any status but `streaming`)."""
    end = time.monotonic() + deadline
    while True:
        reply = await reply_of(client, user, session_id, message_id)
        if reply["status"] != "streaming":
            return reply
        assert time.monotonic() < end, f"the reply is still streaming: {reply}"
        await asyncio.sleep(0.05)


def sse_events(text: str) -> list[tuple[str, Any]]:
    """(event, data) of a whole SSE body, data parsed as JSON."""
    events = []
    for block in text.split("\n\n"):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        if name is not None:
            events.append((name, json.loads("\n".join(data))))
    return events
