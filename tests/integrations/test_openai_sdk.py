"""Code nobody here wrote, against a live server's /v1: the official `openai` Python SDK on
every Conversations route, the Agents SDK's OpenAIConversationsSession on its own contract,
and the `openai` JS SDK (from npm, run by Node) reading what the Python SDK wrote."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from agents.memory import OpenAIConversationsSession
from openai import AsyncOpenAI, OpenAI

from tests.integrations.conftest import Account

JS_SDK = "openai@7.60.0"
AGENT_RUN_ITEMS: list[dict[str, Any]] = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {"type": "reasoning", "id": "rs_1", "summary": []},
    {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
        "status": "completed",
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "21 C"},
    {
        "type": "message",
        "id": "msg_x",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "It is 21 C.", "annotations": [], "logprobs": []}],
    },
]


def sdk(account: Account, key: str, **options: Any) -> OpenAI:
    return OpenAI(base_url=f"{account.base_url}/v1", api_key=key, max_retries=0, **options)


def test_every_conversations_route_through_the_python_sdk(account: Account) -> None:
    key = account.api_key(["read", "write"])
    with sdk(account, key) as client:
        conversation = client.conversations.create(
            items=[{"type": "message", "role": "user", "content": "hello"}], metadata={"topic": "demo"}
        )
        assert conversation.id.startswith("conv_") and conversation.metadata == {"topic": "demo"}
        assert client.conversations.retrieve(conversation.id) == conversation
        updated = client.conversations.update(conversation.id, metadata={"topic": "changed"})
        assert updated.metadata == {"topic": "changed"}

        added = client.conversations.items.create(
            conversation.id, items=[{"type": "message", "role": "user", "content": f"m{i}"} for i in range(5)]
        )
        assert [item.content[0].text for item in added.data] == [f"m{i}" for i in range(5)]  # type: ignore[union-attr]
        walked = [item.id for item in client.conversations.items.list(conversation.id, limit=2, order="asc")]
        assert walked[1:] == [item.id for item in added.data] and len(walked) == 6
        newest = client.conversations.items.list(conversation.id, limit=2)
        assert [i.id for i in newest.data] == walked[:-3:-1] and newest.has_more
        one = client.conversations.items.retrieve(walked[0], conversation_id=conversation.id)
        assert one.type == "message" and one.content[0].text == "hello"  # type: ignore[union-attr]

        assert client.conversations.items.delete(walked[0], conversation_id=conversation.id).id == conversation.id
        with pytest.raises(openai.NotFoundError):
            client.conversations.items.retrieve(walked[0], conversation_id=conversation.id)
        with pytest.raises(openai.BadRequestError) as bad:
            client.conversations.items.create(
                conversation.id, items=[{"type": "message", "role": "robot", "content": "x"}]
            )
        assert bad.value.param == "items[0].role"  # type: ignore[attr-defined]

        session = httpx.get(f"{account.base_url}/chat/sessions/{conversation.id[5:]}", headers=account.headers).json()
        assert (session["platform"], session["message_count"]) == ("openai", 6)
        deleted = client.conversations.delete(conversation.id)
        assert deleted.deleted and deleted.id == conversation.id
        with pytest.raises(openai.NotFoundError):
            client.conversations.retrieve(conversation.id)

    with sdk(account, account.api_key(["read"])) as read_only, pytest.raises(openai.PermissionDeniedError):
        read_only.conversations.create()
    with sdk(account, "chat_not_a_key") as stranger, pytest.raises(openai.AuthenticationError):
        stranger.conversations.create()


def test_idempotency_key_through_the_python_sdk(account: Account) -> None:
    with sdk(account, account.api_key(["read", "write"])) as client:
        conversation = client.conversations.create()
        headers = {"Idempotency-Key": "turn-1"}
        items = [{"type": "message", "role": "user", "content": "once"}]
        first = client.conversations.items.create(conversation.id, items=items, extra_headers=headers)  # type: ignore[arg-type]
        again = client.conversations.items.create(conversation.id, items=items, extra_headers=headers)  # type: ignore[arg-type]
        assert first == again
        assert len(client.conversations.items.list(conversation.id).data) == 1


async def test_agents_sdk_conversations_session_contract(account: Account) -> None:
    client = AsyncOpenAI(base_url=f"{account.base_url}/v1", api_key=account.api_key(["read", "write"]), max_retries=0)
    session = OpenAIConversationsSession(openai_client=client)
    assert await session.get_items() == []  # creates the conversation
    run = AGENT_RUN_ITEMS + [{"role": "user", "content": f"more {i}"} for i in range(20)]  # > 20: two requests
    await session.add_items(run)  # type: ignore[arg-type]

    stored = await session.get_items()
    assert [{k: v for k, v in item.items() if k != "id"} for item in stored] == [expected(i) for i in run]
    assert all(str(item["id"]).startswith("msg_") for item in stored)
    assert await session.get_items(limit=3) == stored[-3:]

    popped = await session.pop_item()
    assert popped == stored[-1]
    assert await session.get_items() == stored[:-1]

    conversation_id = session.session_id
    await session.clear_session()
    gone = httpx.get(f"{account.base_url}/chat/sessions/{conversation_id[5:]}", headers=account.headers)
    assert gone.status_code == 404
    assert await session.get_items() == []  # a new, empty conversation
    await client.close()


def expected(item: dict[str, Any]) -> dict[str, Any]:
    """An item as the SDK reads it back: as written, a `{role, content}` message in OpenAI's shape."""
    shaped = {k: v for k, v in item.items() if k != "id"}
    if "type" not in item:
        part = "output_text" if item["role"] == "assistant" else "input_text"
        shaped = {"role": item["role"], "content": [{"type": part, "text": item["content"]}], "type": "message"}
    return shaped


@pytest.fixture(scope="module")
def js_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed on this machine")
    folder = tmp_path_factory.mktemp("openai-js")
    installed = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", JS_SDK],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if installed.returncode != 0:
        pytest.skip(f"npm could not install {JS_SDK} (offline?): {installed.stderr[-300:]}")
    return folder


LIST_ITEMS_JS = """
const OpenAI = require("openai");
const [baseURL, apiKey, conversationId] = process.argv.slice(2);
(async () => {
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
  const items = [];
  const pages = client.conversations.items.list(conversationId, { order: "asc", limit: 2 });
  for await (const item of pages) items.push(item);
  console.log(JSON.stringify(items));
})().catch((error) => { console.error(String(error)); process.exit(1); });
"""


def test_js_sdk_lists_what_the_python_sdk_wrote(account: Account, js_sdk: Path) -> None:
    key = account.api_key(["read", "write"])
    with sdk(account, key) as client:
        conversation = client.conversations.create(items=AGENT_RUN_ITEMS)  # type: ignore[arg-type]
        written = [
            item.model_dump(exclude_unset=True)
            for item in client.conversations.items.list(conversation.id, order="asc")
        ]
    script = js_sdk / "list_items.js"
    script.write_text(LIST_ITEMS_JS)
    ran = subprocess.run(
        ["node", str(script), f"{account.base_url}/v1", key, conversation.id],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == written
    assert [expected(item) for item in AGENT_RUN_ITEMS] == [{k: v for k, v in i.items() if k != "id"} for i in written]


def test_async_sdk_appends_from_many_tasks_keep_each_batch_whole(account: Account) -> None:
    """Concurrent appends (the Agents SDK's batches) interleave only between batches."""

    async def run() -> list[str]:
        async with AsyncOpenAI(base_url=f"{account.base_url}/v1", api_key=account.api_key(["read", "write"])) as client:
            conversation = await client.conversations.create()

            async def batch(n: int) -> None:
                items = [{"type": "message", "role": "user", "content": f"{n}-{i}"} for i in range(5)]
                await client.conversations.items.create(conversation.id, items=items)  # type: ignore[arg-type]

            await asyncio.gather(*(batch(n) for n in range(4)))
            texts = [
                item.content[0].text async for item in client.conversations.items.list(conversation.id, order="asc")
            ]  # type: ignore[union-attr]
            return texts

    texts = asyncio.run(run())
    assert len(texts) == 20
    for start in range(0, 20, 5):
        assert [t.split("-")[0] for t in texts[start : start + 5]] == [texts[start].split("-")[0]] * 5
