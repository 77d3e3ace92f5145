"""GET /chat/export (the shared NDJSON contract) and its round trip through POST /chat/import;
one session as JSON or Markdown; limits of imports."""

from __future__ import annotations

import json
import re
from typing import Any

from httpx import AsyncClient

from tests.conftest import StartApp
from tests.factories import TestUser, all_pages, bearer, make_session, make_user, post_message
from tests.transfer import chatgpt_export


async def _export(client: AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/chat/export", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    disposition = response.headers["content-disposition"]
    assert re.fullmatch(r'attachment; filename="chat-export-\d{4}-\d\d-\d\d\.ndjson"', disposition)
    return [json.loads(line) for line in response.text.splitlines()]


async def _history(client: AsyncClient, user: TestUser) -> list[tuple[Any, ...]]:
    """Everything a user would compare: titles, platforms, metadata, messages in order."""
    result = []
    for session in await all_pages(client, user, "/chat/sessions"):
        messages = await all_pages(client, user, f"/chat/sessions/{session['_id']}/messages", after_seq=0)
        shown = [
            (
                m["seq"],
                m["role"],
                m["content"],
                m["created_at"],
                m["metadata"],
            )
            for m in messages
        ]
        result.append((session["title"], session["name"], session["platform"], session["metadata"], shown))
    return sorted(result, key=lambda item: str(item[0]))


async def _fill(client: AsyncClient, user: TestUser) -> list[dict[str, Any]]:
    sessions = []
    for title, name in (("Groceries", "shopping-list"), ("Cafés of Paris", None)):
        body = {"title": title, "name": name, "platform": "slack", "metadata": {"run": {"id": 7, "tags": ["a", "b"]}}}
        sessions.append((await client.post("/chat/sessions", json=body, headers=user.headers)).json())
    batch = {
        "messages": [
            {"content": "milk, eggs", "metadata": {"tokens": 3}},
            {"content": "", "role": "assistant", "metadata": {"tool_calls": [{"name": "list"}]}},
            {"content": "and bread ✓", "role": "user"},
        ]
    }
    await client.post(f"/chat/sessions/{sessions[0]['_id']}/messages/batch", json=batch, headers=user.headers)
    await post_message(client, user, sessions[1]["_id"], "Le Procope, since 1686", role="assistant")
    return sessions


async def test_export_follows_the_shared_contract(client: AsyncClient) -> None:
    user = await make_user(client)
    first, second = await _fill(client, user)
    await make_session(client, user, "Empty")
    lines = await _export(client, user.headers)
    header = lines[0]
    assert set(header) == {"type", "format", "version", "exported_at", "sessions", "messages"}
    assert header["type"] == "export" and header["format"] == "chat-export" and header["version"] == 1
    assert header["sessions"] == 3 and header["messages"] == 4
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", header["exported_at"])
    kinds = [line["type"] for line in lines[1:]]
    assert kinds == ["session", "session", "message", "session", "message", "message", "message"]
    # sessions newest activity first, each exactly as the REST API returns it
    for line in lines[1:]:
        if line["type"] == "session":
            rest = (await client.get(f"/chat/sessions/{line['session']['_id']}", headers=user.headers)).json()
            assert line["session"] == rest
    messages = await all_pages(client, user, f"/chat/sessions/{first['_id']}/messages", after_seq=0)
    assert [line["message"] for line in lines[5:]] == messages
    assert [line["session"]["title"] for line in lines if line["type"] == "session"] == [
        "Empty",
        "Cafés of Paris",
        "Groceries",
    ]


async def test_export_then_import_into_a_fresh_user_round_trips_and_twice_is_a_no_op(client: AsyncClient) -> None:
    owner, fresh = await make_user(client), await make_user(client)
    await _fill(client, owner)
    exported = (await client.get("/chat/export", headers=owner.headers)).content
    headers = {**fresh.headers, "Content-Type": "application/x-ndjson"}
    report = (await client.post("/chat/import", content=exported, headers=headers)).json()
    assert report == {
        "format": "chat-export",
        "sessions": {"created": 2, "unchanged": 0},
        "messages": {"created": 4, "unchanged": 0},
        "skipped": [],
        "skipped_total": 0,
        "created_without_name": [],
    }
    assert await _history(client, fresh) == await _history(client, owner)
    again = (await client.post("/chat/import", content=exported, headers=headers)).json()
    assert again["sessions"] == {"created": 0, "unchanged": 2} and again["messages"] == {"created": 0, "unchanged": 4}
    assert await _history(client, fresh) == await _history(client, owner)
    # the owner's own data was not touched, and the fresh user's export re-imports as a no-op too
    assert len(await all_pages(client, owner, "/chat/sessions")) == 2
    second_export = (await client.get("/chat/export", headers=fresh.headers)).content
    third = (await client.post("/chat/import", content=second_export, headers=headers)).json()
    assert third["sessions"]["created"] == 0 and third["messages"]["created"] == 0


async def test_a_read_only_api_key_may_export_but_not_import(client: AsyncClient) -> None:
    user = await make_user(client)
    await _fill(client, user)
    body = {"name": "backup", "scopes": ["read"], "current_password": user.password}
    key = (await client.post("/auths/api-keys", json=body, headers=user.headers)).json()["key"]
    lines = await _export(client, bearer(key))
    assert lines[0]["sessions"] == 2
    refused = await client.post("/chat/import", content=b"[]", headers=bearer(key))
    assert refused.status_code == 403


async def test_one_session_exports_as_json_and_readable_markdown(client: AsyncClient) -> None:
    user, stranger = await make_user(client), await make_user(client)
    first, _ = await _fill(client, user)
    path = f"/chat/sessions/{first['_id']}/export"
    as_json = await client.get(path, headers=user.headers)
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    document = as_json.json()
    assert document["session"]["_id"] == first["_id"]
    assert [m["content"] for m in document["messages"]] == ["milk, eggs", "", "and bread ✓"]
    markdown = await client.get(path, params={"format": "md"}, headers=user.headers)
    assert markdown.headers["content-type"].startswith("text/markdown")
    text = markdown.text
    assert text.startswith("# Groceries\n")
    assert "### You · " in text and "### Assistant · " in text and "*(no text)*" in text
    assert text.index("milk, eggs") < text.index("and bread ✓")
    for other in (stranger, None):
        response = await client.get(path, headers=other.headers if other else {})
        assert response.status_code == (404 if other else 401)
    assert (await client.get(path, params={"format": "pdf"}, headers=user.headers)).status_code == 422


async def test_limits_answer_413_and_422_and_import_nothing(client: AsyncClient, start_app: StartApp) -> None:
    small = await start_app(import_max_bytes=16384, import_max_conversations=2, import_max_messages_per_conversation=2)
    user = await make_user(small)
    too_big = await small.post("/chat/import", content=b"[" + b" " * 20_000 + b"]", headers=user.headers)
    assert too_big.status_code == 413
    many = [chatgpt_export.bread() | {"id": f"c{i}"} for i in range(3)]
    assert (await small.post("/chat/import", json=many, headers=user.headers)).status_code == 422
    long = chatgpt_export.lisbon()  # 5 messages on its current path
    too_long = await small.post("/chat/import", json=[{**long, "mapping": long["mapping"]}], headers=user.headers)
    assert too_long.status_code == 422 and "IMPORT_MAX_MESSAGES_PER_CONVERSATION" in too_long.text
    assert await all_pages(small, user, "/chat/sessions") == []
