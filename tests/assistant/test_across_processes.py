"""Real server processes: a reply whose server is SIGKILLed ends `failed` (interrupted) on the
next server within 30 s, and a reply generated on A is watched and cancelled through B."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.assistant.fake_upstream import FakeUpstream, Script
from tests.conftest import TEST_JWT_SECRET
from tests.events.sse import open_stream
from tests.factories import make_session, make_user
from tests.server_process import ServerProcess

INTERRUPTED_WITHIN_SECONDS = 30.0
SLOW = Script(pieces=[f"t{i} " for i in range(400)], delay=0.05)


@pytest.fixture
def server_env(mongodb_uri: str, upstream: FakeUpstream) -> dict[str, str]:
    return {
        "MONGODB_URI": mongodb_uri,
        "MONGODB_DB": f"test_{uuid.uuid4().hex[:16]}",
        "JWT_SECRET": TEST_JWT_SECRET,
        "MODEL_BASE_URL": upstream.base_url,
        "MODEL_ALLOW_ANY": "true",
    }


@pytest.fixture
def servers(tmp_path: Path, server_env: dict[str, str]) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        if server.process is not None and server.process.poll() is None:
            server.stop()


async def _reply(api: httpx.AsyncClient, headers: dict[str, str], session_id: str, reply_id: str) -> dict[str, Any]:
    items = (await api.get(f"/chat/sessions/{session_id}/messages", headers=headers)).json()["items"]
    found: dict[str, Any] = next(m for m in items if m["_id"] == reply_id)
    return found


async def _ask_slowly(api: httpx.AsyncClient, upstream: FakeUpstream) -> tuple[Any, str, str]:
    upstream.default = SLOW
    user = await make_user(api)
    session = await make_session(api, user)
    asked = await api.post(
        f"/chat/sessions/{session['_id']}/messages",
        json={"content": "count", "reply": {"model": "fake-small"}},
        headers=user.headers,
    )
    assert asked.status_code == 201, asked.text
    return user, session["_id"], asked.json()["reply"]["_id"]


async def _partial(api: httpx.AsyncClient, headers: dict[str, str], session_id: str, reply_id: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        reply = await _reply(api, headers, session_id, reply_id)
        if reply["content"]:
            return str(reply["content"])
        time.sleep(0.1)
    raise AssertionError("no partial text stored")


async def test_sigkill_mid_generation_ends_interrupted_after_restart(
    tmp_path: Path, server_env: dict[str, str], servers: list[ServerProcess], upstream: FakeUpstream
) -> None:
    first = ServerProcess(tmp_path / "a", env=server_env).start()
    servers.append(first)
    async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as api:
        user, session_id, reply_id = await _ask_slowly(api, upstream)
        partial = await _partial(api, user.headers, session_id, reply_id)
    first.kill()
    killed_at = time.monotonic()
    second = ServerProcess(tmp_path / "b", env=server_env).start()
    servers.append(second)
    async with httpx.AsyncClient(base_url=second.base_url, timeout=30) as api:
        while (reply := await _reply(api, user.headers, session_id, reply_id))["status"] == "streaming":
            assert time.monotonic() - killed_at < INTERRUPTED_WITHIN_SECONDS, "still streaming"
            time.sleep(0.2)
        assert reply["status"] == "failed" and reply["metadata"]["error"]["reason"] == "interrupted"
        assert reply["content"].startswith(partial) and "".join(SLOW.pieces).startswith(reply["content"])
        items = (await api.get(f"/chat/sessions/{session_id}/messages", headers=user.headers)).json()["items"]
        assert [m["content"] for m in items][:1] == ["count"] and len(items) == 2
        session = (await api.get(f"/chat/sessions/{session_id}", headers=user.headers)).json()
        assert session["message_count"] == 2
        # the session takes a new reply: nothing is left holding it
        retry = await api.post(
            f"/chat/sessions/{session_id}/replies", json={"model": "fake-small"}, headers=user.headers
        )
        assert retry.status_code == 202, retry.text


async def test_ask_on_a_watch_and_cancel_on_b(
    tmp_path: Path, server_env: dict[str, str], servers: list[ServerProcess], upstream: FakeUpstream
) -> None:
    a = ServerProcess(tmp_path / "a", env=server_env).start()
    b = ServerProcess(tmp_path / "b", env=server_env).start()
    servers.extend([a, b])
    async with httpx.AsyncClient(base_url=a.base_url, timeout=30) as on_a:
        user, session_id, reply_id = await _ask_slowly(on_a, upstream)
        async with open_stream(b.base_url, f"/chat/sessions/{session_id}/events", user.headers) as watch_b:
            seen = (await watch_b.until("message.updated", 10)).json
            while not seen["content"]:  # the first is the reply as it was on connecting
                seen = (await watch_b.until("message.updated", 10)).json
            assert seen["_id"] == reply_id and seen["content"].startswith("t0 ")
            async with httpx.AsyncClient(base_url=b.base_url, timeout=30) as on_b:
                started = time.monotonic()
                cancelled = await on_b.post(
                    f"/chat/sessions/{session_id}/messages/{reply_id}/cancel", headers=user.headers
                )
                stopped_after = time.monotonic() - started
            assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
            assert stopped_after < 2.5, stopped_after  # ~0.5 s by design; loose for a loaded machine
            final = cancelled.json()["content"]
            assert final and "".join(SLOW.pieces).startswith(final) and len(final) < len("".join(SLOW.pieces))
            while (event := await watch_b.until("message.updated", 10)).json["status"] == "streaming":
                pass
            assert event.json["status"] == "cancelled"
        time.sleep(0.5)
        assert (await _reply(on_a, user.headers, session_id, reply_id))["content"] == final
