"""Imports retried after a crash, or run twice at once, create everything exactly once; their
look-ups are served by indexes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bson import ObjectId
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.chat import history, service
from app.chat.upgrade import LOOKUP_RECORDS, PROVENANCE_OUT_OF_METADATA, upgrade_chat_documents
from app.core.db import MESSAGE_SOURCES, MESSAGES, MIGRATIONS, SESSION_SOURCES, SESSIONS, Document
from app.core.errors import DatabaseUnavailable
from tests.explain import assert_uses_index
from tests.factories import all_pages, make_user
from tests.transfer.chatgpt_export import T0, _message, _node


def _long_conversation(count: int) -> dict[str, Any]:
    mapping: dict[str, Any] = {"root": _node("root", None, [], None)}
    parent = "root"
    for i in range(count):
        node_id = f"n{i}"
        mapping[node_id] = _node(node_id, parent, [], _message(node_id, "user", [f"line {i}"], T0 + i))
        mapping[parent]["children"] = [node_id]
        parent = node_id
    return {"title": "Long", "id": "conv-long", "mapping": mapping, "current_node": parent}


async def test_an_import_interrupted_midway_and_retried_creates_nothing_twice(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(client)
    body = [_long_conversation(250)]
    real_append = service.append_dated_messages
    calls = 0

    async def crash_on_the_second_batch(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise DatabaseUnavailable()
        return await real_append(*args)

    monkeypatch.setattr(history, "append_dated_messages", crash_on_the_second_batch)
    assert (await client.post("/chat/import", json=body, headers=user.headers)).status_code == 503
    monkeypatch.setattr(history, "append_dated_messages", real_append)
    report = (await client.post("/chat/import", json=body, headers=user.headers)).json()
    assert report["sessions"] == {"created": 0, "unchanged": 1}
    assert report["messages"] == {"created": 150, "unchanged": 100}
    (session,) = await all_pages(client, user, "/chat/sessions")
    messages = await all_pages(client, user, f"/chat/sessions/{session['_id']}/messages", limit=1000, after_seq=0)
    assert [m["content"] for m in messages] == [f"line {i}" for i in range(250)]
    assert session["message_count"] == 250


async def test_two_imports_of_one_file_at_once_create_it_once(client: AsyncClient) -> None:
    user = await make_user(client)
    body = [_long_conversation(120)]
    first, second = await asyncio.gather(
        *(client.post("/chat/import", json=body, headers=user.headers) for _ in range(2))
    )
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    created = first.json()["messages"]["created"] + second.json()["messages"]["created"]
    assert created == 120
    (session,) = await all_pages(client, user, "/chat/sessions")
    assert session["message_count"] == 120


async def test_a_deleted_imported_session_comes_back_on_the_next_import(client: AsyncClient) -> None:
    user = await make_user(client)
    body = [_long_conversation(3)]
    await client.post("/chat/import", json=body, headers=user.headers)
    (session,) = await all_pages(client, user, "/chat/sessions")
    assert (await client.delete(f"/chat/sessions/{session['_id']}", headers=user.headers)).status_code == 204
    report = (await client.post("/chat/import", json=body, headers=user.headers)).json()
    assert report["sessions"] == {"created": 1, "unchanged": 0}
    assert report["messages"] == {"created": 3, "unchanged": 0}
    again = (await client.post("/chat/import", json=body, headers=user.headers)).json()
    assert again["sessions"] == {"created": 0, "unchanged": 1}


async def test_import_look_ups_are_served_by_indexes(db: AsyncDatabase[Document]) -> None:
    user_id, session_id = ObjectId(), ObjectId()
    await assert_uses_index(db, SESSION_SOURCES, {"user_id": user_id, "source_id": "chatgpt:x"})
    await assert_uses_index(db, MESSAGE_SOURCES, {"session_id": session_id, "source_id": {"$in": ["a", "b"]}})


async def test_imports_from_before_source_records_are_found_again_after_the_upgrade(
    client: AsyncClient, db: AsyncDatabase[Document]
) -> None:
    """An earlier build found imported sessions and messages by metadata.source_id on the
    documents themselves; the upgrade records them, so importing again still adds nothing, and
    then takes the keys that build's imports wrote out of the metadata (issue 21), leaving a
    user's own `source_id` where the user wrote it."""
    user = await make_user(client)
    body = [_long_conversation(5)]
    await client.post("/chat/import", json=body, headers=user.headers)
    own = {"title": "Mine", "metadata": {"source_id": "crm-7", "source": "chatgpt"}}
    mine = (await client.post("/chat/sessions", json=own, headers=user.headers)).json()
    # As that build stored them: the source ids in the documents' metadata, no records.
    async for record in db[SESSION_SOURCES].find({}):
        change = {"$set": {"metadata.source_id": record["source_id"], "metadata.source": "chatgpt"}}
        await db[SESSIONS].update_one({"_id": record["session_id"]}, change)
    async for record in db[MESSAGE_SOURCES].find({}):
        source = {"session_id": record["session_id"], "seq": int(record["source_id"][1:]) + 1}
        await db[MESSAGES].update_one(source, {"$set": {"metadata.source_id": record["source_id"]}})
    for collection in (SESSION_SOURCES, MESSAGE_SOURCES):
        await db[collection].delete_many({})
    await db[MIGRATIONS].delete_many({"name": {"$in": [LOOKUP_RECORDS, PROVENANCE_OUT_OF_METADATA]}})
    await upgrade_chat_documents(db)
    again = (await client.post("/chat/import", json=body, headers=user.headers)).json()
    assert again["sessions"] == {"created": 0, "unchanged": 1}
    assert again["messages"] == {"created": 0, "unchanged": 5}
    sessions = {s["title"]: s for s in await all_pages(client, user, "/chat/sessions")}
    assert sessions["Long"]["metadata"] == {}
    assert sessions["Mine"]["metadata"] == mine["metadata"]
    messages = await all_pages(client, user, f"/chat/sessions/{sessions['Long']['_id']}/messages", after_seq=0)
    assert [m["metadata"] for m in messages] == [{}] * 5
