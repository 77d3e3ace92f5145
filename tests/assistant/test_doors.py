"""The doors over a real server process with a fake upstream: Client.ask / stream_reply (sync
and async), `chat ask` (Ctrl-C cancels the generation) and `chat agents`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from chat_client import AsyncClient, Client
from pymongo import MongoClient

from tests.assistant.fake_upstream import FakeUpstream, Script
from tests.conftest import TEST_JWT_SECRET
from tests.factories import DEFAULT_PASSWORD, register_over_http
from tests.integrations.test_mcp import connect, result_json
from tests.server_process import ServerProcess

CHAT = str(Path(sys.executable).parent / "chat")
SLOW = Script(pieces=[f"s{i} " for i in range(400)], delay=0.05)


@pytest.fixture(scope="module")
def module_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str, module_upstream: FakeUpstream
) -> Iterator[ServerProcess]:
    database = f"test_{uuid.uuid4().hex[:16]}"
    env = {
        "MONGODB_URI": mongodb_uri,
        "MONGODB_DB": database,
        "JWT_SECRET": TEST_JWT_SECRET,
        "MODEL_BASE_URL": module_upstream.base_url,
    }
    process = ServerProcess(tmp_path_factory.mktemp("doors") / "data", env=env).start()
    with MongoClient(mongodb_uri) as mongo:  # an agent, as chat-admin or /admin/agents would make it
        now = mongo[database].command("hello")["localTime"]
        agent = {"name": "helper", "model": "fake-small", "instructions": "Be brief.", "description": "Helps"}
        mongo[database]["agents"].insert_one({**agent, "created_at": now, "updated_at": now})
        try:
            yield process
        finally:
            process.stop()
            mongo.drop_database(database)


@pytest.fixture
def api_key(server: ServerProcess) -> str:
    headers = register_over_http(server.base_url, f"doors{uuid.uuid4().hex[:8]}")
    body = {"name": "cli", "scopes": ["read", "write"], "current_password": DEFAULT_PASSWORD}
    response = httpx.post(f"{server.base_url}/auths/api-keys", json=body, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def test_client_ask_and_stream_reply(server: ServerProcess, api_key: str, module_upstream: FakeUpstream) -> None:
    module_upstream.default = Script()
    with Client(server.base_url, api_key=api_key) as chat:
        session = chat.session(name="asked", platform="cli")
        final = chat.ask(session, "hello?", agent="helper")
        assert (final.status, final.content, final.seq) == ("complete", "Hello, world!", 2)
        assert "".join(chat.stream_reply(session, "again", agent="helper")) == "Hello, world!"
        assert [a.name for a in chat.agents()] == ["helper"]

    async def asynchronously() -> None:
        async with AsyncClient(server.base_url, api_key=api_key) as chat:
            session = await chat.session(name="asked")
            final = await chat.ask(session, "third", agent="helper")
            assert final.status == "complete" and final.seq == 6
            deltas = [d async for d in chat.stream_reply(session, "fourth", agent="helper")]
            assert "".join(deltas) == "Hello, world!"

    asyncio.run(asynchronously())


def test_chat_ask_streams_and_ctrl_c_cancels(
    server: ServerProcess, api_key: str, module_upstream: FakeUpstream
) -> None:
    env = {**os.environ, "CHAT_URL": server.base_url, "CHAT_API_KEY": api_key}
    module_upstream.default = Script()
    done = subprocess.run(
        [CHAT, "ask", "from-cli", "hi", "--agent", "helper"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello, world!\n"
    listed = subprocess.run([CHAT, "agents"], env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and listed.stdout.split()[:2] == ["helper", "fake-small"]

    module_upstream.default = SLOW
    asking = subprocess.Popen(
        [CHAT, "ask", "from-cli", "count", "--agent", "helper"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert asking.stdout is not None
    assert asking.stdout.read(3) == "s0 "  # the reply streams
    asking.send_signal(signal.SIGINT)
    code = asking.wait(30)
    assert code == 130
    with Client(server.base_url, api_key=api_key) as chat:
        session = chat.find_session("from-cli")
        assert session is not None
        reply = list(chat.messages(session))[-1]
        deadline = time.monotonic() + 10
        while reply.status == "streaming" and time.monotonic() < deadline:
            time.sleep(0.1)
            reply = list(chat.messages(session))[-1]
        assert reply.status == "cancelled" and reply.content.startswith("s0 ")


async def test_mcp_ask_agent_returns_the_final_reply(
    server: ServerProcess, api_key: str, module_upstream: FakeUpstream
) -> None:
    module_upstream.default = Script()
    with Client(server.base_url, api_key=api_key) as chat:
        session = chat.session(name="mcp-asked", platform="agent")
    async with connect(server.base_url, api_key) as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        assert "ask_agent" in tools and tools["ask_agent"].annotations.read_only_hint is False
        result = await mcp.call_tool("ask_agent", {"session_id": session.id, "content": "hi", "agent": "helper"})
        reply = result_json(result)
        assert (reply["role"], reply["status"], reply["content"]) == ("assistant", "complete", "Hello, world!")
        foreign = await mcp.call_tool("ask_agent", {"session_id": "0" * 24, "content": "hi", "agent": "helper"})
        assert foreign.is_error and '"status": 404' in foreign.content[0].text
