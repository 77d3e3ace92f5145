"""Issue 21: importing your own export into the same account doubled every chat, and imports
wrote `source_id` into the user's metadata. A restore is a no-op for what is still there and
recreates only what was deleted (same messages, same seqs, same times); another account gets
everything; every field a user wrote comes back byte for byte."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.factories import TestUser, all_pages, make_user

# A user's own `source_id` keys: an import must neither take them for its own nor overwrite them.
SESSION_METADATA = {"run": {"id": 7, "tags": ["a", "b"]}, "source_id": "my-crm-42", "ratio": 0.1, "none": None}
MESSAGES: list[dict[str, Any]] = [
    {"content": "milk, eggs", "metadata": {"tokens": 3, "source_id": "sms-9"}},
    {"content": "", "role": "assistant", "metadata": {"tool_calls": [{"name": "list"}]}},
    {"content": "and bread ✓  \n", "role": "user"},
]
NDJSON = {"Content-Type": "application/x-ndjson"}
USER_FIELDS = ("title", "name", "platform", "metadata", "message_count", "created_at", "updated_at", "last_message_at")
MESSAGE_FIELDS = ("seq", "role", "content", "metadata", "created_at")


async def _fill(client: AsyncClient, user: TestUser) -> list[dict[str, Any]]:
    sessions = []
    for title, name in (("Groceries", "shopping-list"), ("Cafés of Paris", None)):
        body = {"title": title, "name": name, "platform": "slack", "metadata": SESSION_METADATA}
        sessions.append((await client.post("/chat/sessions", json=body, headers=user.headers)).json())
    batch = {"messages": MESSAGES}
    await client.post(f"/chat/sessions/{sessions[0]['_id']}/messages/batch", json=batch, headers=user.headers)
    one = {"content": "Le Procope, since 1686", "role": "assistant", "metadata": {"source": "guide"}}
    await client.post(f"/chat/sessions/{sessions[1]['_id']}/messages", json=one, headers=user.headers)
    return sessions


async def _everything(client: AsyncClient, user: TestUser) -> list[tuple[Any, ...]]:
    """What the user wrote, and the times, of every session and message, as REST gives them."""
    result = []
    for session in await all_pages(client, user, "/chat/sessions"):
        messages = await all_pages(client, user, f"/chat/sessions/{session['_id']}/messages", after_seq=0)
        shown = [tuple(m[f] for f in MESSAGE_FIELDS) for m in messages]
        result.append((*(session[f] for f in USER_FIELDS), shown))
    return sorted(result, key=lambda item: str(item[0]))


async def _import(client: AsyncClient, user: TestUser, body: bytes) -> dict[str, Any]:
    response = await client.post("/chat/import", content=body, headers={**user.headers, **NDJSON})
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def test_restoring_a_backup_recreates_only_what_was_deleted_and_another_account_gets_it_all(
    client: AsyncClient,
) -> None:
    owner = await make_user(client)
    groceries, cafes = await _fill(client, owner)
    before = await _everything(client, owner)
    backup = (await client.get("/chat/export", headers=owner.headers)).content

    report = await _import(client, owner, backup)
    assert report["sessions"] == {"created": 0, "unchanged": 2}
    assert report["messages"] == {"created": 0, "unchanged": 4}
    assert report["skipped"] == [] and report["created_without_name"] == []
    assert await _everything(client, owner) == before

    assert (await client.delete(f"/chat/sessions/{groceries['_id']}", headers=owner.headers)).status_code == 204
    report = await _import(client, owner, backup)
    assert report["sessions"] == {"created": 1, "unchanged": 1}
    assert report["messages"] == {"created": 3, "unchanged": 1}
    assert report["skipped"] == [] and report["created_without_name"] == []
    assert await _everything(client, owner) == before  # same messages, seqs, metadata and times
    assert (await _import(client, owner, backup))["sessions"] == {"created": 0, "unchanged": 2}
    assert await _everything(client, owner) == before

    other = await make_user(client)
    report = await _import(client, other, backup)
    assert report["sessions"] == {"created": 2, "unchanged": 0}
    assert report["messages"] == {"created": 4, "unchanged": 0}
    assert await _everything(client, other) == before
    assert (await _import(client, other, backup))["sessions"] == {"created": 0, "unchanged": 2}
    assert cafes["_id"] in {s["_id"] for s in await all_pages(client, owner, "/chat/sessions")}


async def test_the_export_of_an_import_is_byte_for_byte_what_the_user_wrote(client: AsyncClient) -> None:
    owner, other = await make_user(client), await make_user(client)
    await _fill(client, owner)
    await _import(client, other, (await client.get("/chat/export", headers=owner.headers)).content)
    imported = await all_pages(client, other, "/chat/sessions")
    titles = ["Groceries", "Cafés of Paris"]
    assert {s["title"]: s["metadata"] for s in imported} == dict.fromkeys(titles, SESSION_METADATA)
    groceries = next(s for s in imported if s["title"] == "Groceries")
    messages = await all_pages(client, other, f"/chat/sessions/{groceries['_id']}/messages", after_seq=0)
    assert [m["metadata"] for m in messages] == [m.get("metadata", {}) for m in MESSAGES]
    assert [m["content"] for m in messages] == [m["content"] for m in MESSAGES]


async def test_a_name_taken_by_a_different_conversation_is_reported_once_and_clearly(client: AsyncClient) -> None:
    owner, other = await make_user(client), await make_user(client)
    await _fill(client, owner)
    taken = {"title": "mine", "name": "shopping-list"}
    mine = (await client.post("/chat/sessions", json=taken, headers=other.headers)).json()
    report = await _import(client, other, (await client.get("/chat/export", headers=owner.headers)).content)
    assert report["sessions"] == {"created": 2, "unchanged": 0} and report["messages"]["created"] == 4
    assert report["skipped"] == [] and report["skipped_total"] == 0
    assert report["created_without_name"] == [{"conversation": "Groceries", "name": "shopping-list"}]
    named = await all_pages(client, other, "/chat/sessions", name="shopping-list")
    assert [session["_id"] for session in named] == [mine["_id"]]
