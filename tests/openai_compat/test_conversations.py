"""/v1/conversations over ASGI: items read back exactly as written (per type), show in /chat as
the messages our UI renders, append atomically, page over deleted items; errors in OpenAI's
shape without the input; read-only keys; Idempotency-Key; bounds."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from tests.factories import TestUser, bearer, make_user

ROUND_TRIP_ITEMS: list[dict[str, Any]] = [
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What is the weather in Paris?"}]},
    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Answer briefly."}]},
    {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "You are terse."}]},
    {
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Let me check.", "annotations": [], "logprobs": []}],
    },
    {
        "type": "function_call",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
        "status": "completed",
    },
    {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 21}'},
    {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Look it up."}], "encrypted_content": "gAAA"},
    {"type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "paris weather"}},
]


async def api_key(client: AsyncClient, user: TestUser, scopes: list[str]) -> dict[str, str]:
    body = {"name": "-".join(scopes), "scopes": scopes, "current_password": user.password}
    response = await client.post("/auths/api-keys", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return bearer(response.json()["key"])


async def new_conversation(client: AsyncClient, user: TestUser, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/conversations", json=body, headers=user.headers)
    assert response.status_code == 200, response.text
    conversation: dict[str, Any] = response.json()
    return conversation


def without_id(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key != "id"}


async def test_every_item_type_reads_back_as_written_and_shows_in_chat_as_messages(client: AsyncClient) -> None:
    user = await make_user(client)
    conversation = await new_conversation(client, user, items=ROUND_TRIP_ITEMS[:2], metadata={"topic": "weather"})
    assert conversation["object"] == "conversation" and conversation["metadata"] == {"topic": "weather"}
    path = f"/v1/conversations/{conversation['id']}/items"
    appended = await client.post(path, json={"items": ROUND_TRIP_ITEMS[2:]}, headers=user.headers)
    assert appended.status_code == 200, appended.text
    assert [without_id(i) for i in appended.json()["data"]] == ROUND_TRIP_ITEMS[2:]

    listed = (await client.get(path, params={"order": "asc", "limit": 100}, headers=user.headers)).json()
    assert [without_id(item) for item in listed["data"]] == ROUND_TRIP_ITEMS
    assert listed["object"] == "list" and listed["has_more"] is False
    assert (listed["first_id"], listed["last_id"]) == (listed["data"][0]["id"], listed["data"][-1]["id"])
    for item in listed["data"]:
        one = await client.get(f"{path}/{item['id']}", headers=user.headers)
        assert one.json() == item

    session_id = conversation["id"].removeprefix("conv_")
    session = (await client.get(f"/chat/sessions/{session_id}", headers=user.headers)).json()
    assert (session["platform"], session["metadata"], session["title"]) == (
        "openai",
        {"topic": "weather"},
        "What is the weather in Paris?",
    )
    page = (await client.get(f"/chat/sessions/{session_id}/messages", headers=user.headers)).json()
    shown = [(m["role"], m["content"], m["metadata"]) for m in page["items"]]
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    assert shown == [
        ("user", "What is the weather in Paris?", {}),
        ("system", "Answer briefly.", {}),
        ("system", "You are terse.", {}),
        ("assistant", "Let me check.", {}),
        ("assistant", "", {"tool_calls": [call]}),
        ("tool", '{"temp": 21}', {"tool_call_id": "call_1", "name": "get_weather"}),
        ("assistant", "Look it up.", {"type": "reasoning"}),
        ("assistant", "", {"type": "web_search_call"}),
    ]
    assert [f"msg_{m['_id']}" for m in page["items"]] == [i["id"] for i in listed["data"]]


async def test_shorthand_messages_and_chat_posts_read_back_in_openai_shape(client: AsyncClient) -> None:
    user = await make_user(client)
    conversation = await new_conversation(client, user)
    path = f"/v1/conversations/{conversation['id']}/items"
    shorthand = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert (await client.post(path, json={"items": shorthand}, headers=user.headers)).status_code == 200
    session_path = f"/chat/sessions/{conversation['id'].removeprefix('conv_')}/messages"
    posted = await client.post(session_path, json={"role": "user", "content": "from the UI"}, headers=user.headers)
    assert posted.status_code == 201
    data = (await client.get(path, params={"order": "asc"}, headers=user.headers)).json()["data"]
    assert [without_id(i) for i in data] == [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}], "type": "message"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "hello"}], "type": "message"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "from the UI"}]},
    ]


async def test_pages_forwards_and_backwards_over_deleted_items(client: AsyncClient) -> None:
    user = await make_user(client)
    items = [{"role": "user", "content": f"m{i}"} for i in range(12)]
    conversation = await new_conversation(client, user)
    path = f"/v1/conversations/{conversation['id']}/items"
    ids = [i["id"] for i in (await client.post(path, json={"items": items}, headers=user.headers)).json()["data"]]
    for gone in ids[3:9]:
        answer = await client.delete(f"{path}/{gone}", headers=user.headers)
        assert answer.status_code == 200 and answer.json()["id"] == conversation["id"]
    kept = ids[:3] + ids[9:]
    for order, expected in (("asc", kept), ("desc", kept[::-1])):
        walked, after = [], None
        while True:
            params = {"order": order, "limit": 2} | ({"after": after} if after else {})
            page = (await client.get(path, params=params, headers=user.headers)).json()
            walked += [i["id"] for i in page["data"]]
            if not page["has_more"]:
                break
            after = page["last_id"]
        assert walked == expected
    missing = await client.get(f"{path}/{ids[4]}", headers=user.headers)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"


async def test_metadata_update_replaces_and_name_gets_or_creates(client: AsyncClient) -> None:
    user = await make_user(client)
    first = await new_conversation(client, user, metadata={"name": "nightly", "platform": "cli", "a": "1"})
    again = await new_conversation(client, user, metadata={"name": "nightly"}, items=[{"role": "user", "content": "x"}])
    assert again["id"] == first["id"] and again["metadata"] == {"name": "nightly", "platform": "cli", "a": "1"}
    found = (await client.get("/chat/sessions", params={"name": "nightly"}, headers=user.headers)).json()["items"]
    assert [(s["_id"], s["platform"]) for s in found] == [(first["id"].removeprefix("conv_"), "cli")]
    updated = await client.post(f"/v1/conversations/{first['id']}", json={"metadata": {"b": "2"}}, headers=user.headers)
    assert updated.json()["metadata"] == {"b": "2"}
    assert (await client.get(f"/v1/conversations/{first['id']}", headers=user.headers)).json() == updated.json()
    deleted = await client.delete(f"/v1/conversations/{first['id']}", headers=user.headers)
    assert deleted.json() == {"id": first["id"], "object": "conversation.deleted", "deleted": True}
    assert (
        await client.get(f"/chat/sessions/{first['id'].removeprefix('conv_')}", headers=user.headers)
    ).status_code == 404


async def test_read_only_key_reads_but_cannot_write_and_strangers_get_404(client: AsyncClient) -> None:
    owner, stranger = await make_user(client), await make_user(client)
    conversation = await new_conversation(client, owner, items=[{"role": "user", "content": "mine"}])
    path = f"/v1/conversations/{conversation['id']}"
    read_only = await api_key(client, owner, ["read"])
    assert (await client.get(f"{path}/items", headers=read_only)).json()["data"][0]["content"][0]["text"] == "mine"
    refused = await client.post(f"{path}/items", json={"items": [{"role": "user", "content": "x"}]}, headers=read_only)
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
    for method, url in (("GET", path), ("GET", f"{path}/items"), ("DELETE", path)):
        answer = await client.request(method, url, headers=stranger.headers)
        assert answer.status_code == 404 and answer.json()["error"]["message"] == "Conversation not found"
    unauthenticated = await client.get(path)
    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"]["code"] == "invalid_api_key"
    assert (await client.get("/chat/sessions/nope")).json() == {"detail": "Not authenticated"}  # /chat keeps its shape


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"items": [{"role": "user", "content": "ok"}, {"role": "robot", "content": "SECRET-INPUT"}]}, "items[1].role"),
        ({"items": [{"type": "function_call", "call_id": "c", "name": "f"}]}, "items[0].arguments"),
        ({"items": [{"role": "user", "content": "x" * 32_001}]}, "items[0]"),
        ({"items": [{"role": "user", "content": "hi", "$where": "SECRET-INPUT"}]}, "items[0]"),
        ({"items": [{"role": "user", "content": "hi"}] * 101}, "items"),
        ({"items": []}, "items"),
        ({"items": [{"role": "user", "content": "SECRET-INPUT\ud800"}]}, "items[0]"),
    ],
)
async def test_bad_items_are_400_naming_the_param_never_echoing_it(
    client: AsyncClient, body: dict[str, Any], param: str
) -> None:
    user = await make_user(client)
    conversation = await new_conversation(client, user, items=[{"role": "user", "content": "kept"}])
    path = f"/v1/conversations/{conversation['id']}/items"
    # As JSON text: a lone surrogate is an escape there, which httpx's own encoder cannot send.
    raw = json.dumps(body).encode()
    answer = await client.post(path, content=raw, headers=user.headers | {"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert "SECRET-INPUT" not in answer.text and "xxxx" not in answer.text
    assert len((await client.get(path, headers=user.headers)).json()["data"]) == 1  # nothing of it stored


async def test_create_bounds_metadata_and_items(client: AsyncClient) -> None:
    user = await make_user(client)
    too_many = {f"k{i}": "v" for i in range(17)}
    cases = [
        ({"metadata": too_many}, "metadata"),
        ({"metadata": {"k": "v" * 513}}, "metadata.k"),
        ({"items": [{"role": "user", "content": "x"}] * 21}, "items"),
        ({"metadata": {"platform": "Not A Platform"}}, "metadata.platform"),
        ({"items": [{"role": "user", "content": "fine"}, {"role": "robot", "content": "x"}]}, "items[1].role"),
    ]
    for body, param in cases:
        answer = await client.post("/v1/conversations", json=body, headers=user.headers)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param, answer.text
    assert (await client.get("/chat/sessions", headers=user.headers)).json()["items"] == []


async def test_idempotency_key_replays_a_create_and_an_append(client: AsyncClient) -> None:
    user = await make_user(client)
    keyed = user.headers | {"Idempotency-Key": "create-1"}
    create = {"items": [{"role": "user", "content": "first"}]}
    created, replayed = [await client.post("/v1/conversations", json=create, headers=keyed) for _ in range(2)]
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.json() == created.json()
    assert len((await client.get("/chat/sessions", headers=user.headers)).json()["items"]) == 1
    conversation = created.json()
    path = f"/v1/conversations/{conversation['id']}/items"
    headers = user.headers | {"Idempotency-Key": "append-1"}
    body = {"items": [{"role": "user", "content": "once"}]}
    first, retry = [await client.post(path, json=body, headers=headers) for _ in range(2)]
    assert retry.headers["Idempotent-Replayed"] == "true" and retry.json() == first.json()
    texts = [i["content"][0]["text"] for i in (await client.get(path, headers=user.headers)).json()["data"]]
    assert texts == ["once", "first"]
    reused = await client.post(path, json={"items": [{"role": "user", "content": "other"}]}, headers=headers)
    assert reused.status_code == 400 and reused.json()["error"]["param"] == "Idempotency-Key"


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_hostile_items_at_the_body_limit_cost_bounded_time_and_memory(client: AsyncClient) -> None:
    """The server runs in this process: its RSS and each answer's time are measured here
    (the tests' MAX_BODY_BYTES is 64 KiB)."""
    user = await make_user(client)
    conversation = await new_conversation(client, user)
    path = f"/v1/conversations/{conversation['id']}/items"
    many_parts = [{"role": "user", "content": [{"type": "input_image"}] * 10} for _ in range(99)]
    long_type = {"type": "input_" + "i" * 94}  # shown as "[input_iii...]": 102 characters with its newline
    many_parts.append({"role": "user", "content": [long_type] * 320})  # its text: 32,639 characters
    deep: dict[str, Any] = {"role": "user", "content": "x"}
    for _ in range(12):
        deep = {"type": "custom", "nested": deep}
    full = [{"role": "assistant", "content": "y" * 3_000} for _ in range(20)]
    before = rss_mib()
    for body, status in (({"items": many_parts}, 400), ({"items": [deep] * 100}, 400), ({"items": full}, 200)):
        raw = json.dumps(body).encode()
        assert len(raw) < 64 * 1024
        started = time.monotonic()
        answer = await client.post(path, content=raw, headers=user.headers | {"Content-Type": "application/json"})
        assert answer.status_code == status, answer.text[:300]
        assert time.monotonic() - started < 20  # generous: the machine is shared
        if status == 400:
            assert len(answer.content) < 1024
    assert rss_mib() - before < 50
    page = (await client.get(path, params={"limit": 100}, headers=user.headers)).json()
    assert len(page["data"]) == 20 and page["data"][0]["content"][0]["text"] == "y" * 3_000


async def test_unknown_v1_routes_answer_404_in_openai_shape(client: AsyncClient) -> None:
    user = await make_user(client)
    for method, path in (("POST", "/v1/responses"), ("GET", "/v1/nothing/here"), ("PUT", "/v1/conversations/x")):
        answer = await client.request(method, path, headers=user.headers)
        assert answer.status_code == 404 and answer.json()["error"]["type"] == "invalid_request_error", answer.text
