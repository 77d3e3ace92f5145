"""Rich messages, batch append and forward reads: what an agent runner needs to keep a turn."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from bson import ObjectId
from fastapi import FastAPI
from httpx import AsyncClient
from pymongo import monitoring
from pymongo.asynchronous.database import AsyncDatabase

from app.chat import repository, service
from app.chat.schemas import MessageCreate
from app.core.db import (
    GENERATIONS,
    MESSAGE_TERMS,
    MESSAGES,
    REVOCATIONS,
    SEARCH_INDEXER,
    SESSIONS,
    TERM_COUNT_DELTAS,
    TERM_COUNTS,
    Document,
)
from tests.conftest import StartApp
from tests.factories import all_pages, make_session, make_user, post_message

BACKGROUND_COLLECTIONS = {REVOCATIONS, SEARCH_INDEXER, MESSAGE_TERMS, TERM_COUNTS, TERM_COUNT_DELTAS, GENERATIONS}

TOOL_CALL = {
    "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Lisbon"}'}}
    ],
    "model": "gpt-x",
    "usage": {"prompt_tokens": 12, "completion_tokens": 7},
}


async def test_messages_carry_metadata_and_tool_turns(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}/messages"
    call = await client.post(
        path, json={"role": "assistant", "content": "", "metadata": TOOL_CALL}, headers=user.headers
    )
    assert call.status_code == 201, call.text
    assert call.json()["content"] == "" and call.json()["metadata"] == TOOL_CALL
    result = {"role": "tool", "content": '{"temp": 21}', "metadata": {"tool_call_id": "call_1", "name": "get_weather"}}
    assert (await client.post(path, json=result, headers=user.headers)).json()["metadata"]["tool_call_id"] == "call_1"

    empty_not_allowed = [
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": "  ", "metadata": {}},
        {"role": "user", "content": "", "metadata": {"a": 1}},
        {"role": "tool", "content": "", "metadata": {"tool_call_id": "x"}},
        {"role": "assistant", "content": "", "metadata": {"a.b": 1}},
    ]
    for body in empty_not_allowed:
        assert (await client.post(path, json=body, headers=user.headers)).status_code == 422, body


async def test_the_answer_to_a_post_is_the_message_as_it_is_read_later(client: AsyncClient) -> None:
    """The stored message is answered without reading it back: every value must come back
    from the database as it went in (numbers at the edges of BSON's types, text, times)."""
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}/messages"
    metadata = {
        "int64": 2**63 - 1,
        "negative": -(2**62),
        "small": 7,
        "floats": [0.1, 1e300, -0.0, 5e-324, 2.0],
        "text": "naïve ✓ 𝄞 with \u0000 inside",
        "nested": {"a": [{"b": None, "c": True}], "empty": {}},
    }
    posted = await client.post(path, json={"content": "é\n\t 𝄞", "metadata": metadata}, headers=user.headers)
    batch = await client.post(
        path + "/batch",
        json={"messages": [{"content": "one"}, {"role": "assistant", "content": "two"}]},
        headers=user.headers,
    )
    assert posted.status_code == 201 and batch.status_code == 201
    listed = (await client.get(path, headers=user.headers)).json()["items"]
    assert listed == [posted.json(), *batch.json()["items"]]


async def test_batch_is_stored_in_order_with_consecutive_seqs(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    await post_message(client, user, session["_id"], "before")
    turn = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "", "metadata": TOOL_CALL},
        {"role": "tool", "content": "21C", "metadata": {"tool_call_id": "call_1"}},
        {"role": "assistant", "content": "It is **21°C**."},
    ]
    response = await client.post(
        f"/chat/sessions/{session['_id']}/messages/batch", json={"messages": turn}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    assert [m["seq"] for m in items] == [2, 3, 4, 5]
    assert [(m["role"], m["content"], m["metadata"]) for m in items] == [
        (t["role"], t["content"], t.get("metadata", {})) for t in turn
    ]
    assert len({m["created_at"] for m in items}) == 1
    stored = await all_pages(client, user, f"/chat/sessions/{session['_id']}/messages")
    assert stored[1:] == items
    updated = (await client.get(f"/chat/sessions/{session['_id']}", headers=user.headers)).json()
    assert updated["message_count"] == 5 and updated["last_message_at"] == items[-1]["created_at"]


async def test_an_invalid_message_fails_the_whole_batch(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}/messages/batch"
    messages: list[dict[str, Any]] = [{"content": f"m{i}"} for i in range(5)]
    messages[3] = {"content": "   "}
    response = await client.post(path, json={"messages": messages}, headers=user.headers)
    assert response.status_code == 422
    assert any(error["loc"][:3] == ["body", "messages", 3] for error in response.json()["detail"]), response.text
    for bad in ({"messages": []}, {"messages": [{"content": "x"}] * 101}, {}, {"messages": "x"}):
        assert (await client.post(path, json=bad, headers=user.headers)).status_code == 422
    assert await db[MESSAGES].count_documents({"session_id": ObjectId(session["_id"])}) == 0
    stored = await db[SESSIONS].find_one({"_id": ObjectId(session["_id"])})
    assert stored is not None and stored["message_count"] == 0

    stranger = await make_user(client)
    foreign = await client.post(path, json={"messages": [{"content": "x"}]}, headers=stranger.headers)
    assert foreign.status_code == 404
    assert (
        await client.post(path, json={"messages": [{"content": "x"}] * 100}, headers=user.headers)
    ).status_code == 201


def _change_stream_command(name: str, command: Any) -> bool:
    if name == "getMore":
        return bool(command.get("collection") == "$cmd.aggregate")
    return name == "aggregate" and any("$changeStream" in stage for stage in command.get("pipeline", []))


class _CommandCounter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        """Commands of requests: not handshakes and logins, nor the revocation poller's reads."""
        if event.command_name in {"hello", "isMaster", "ping", "endSessions", "saslStart", "saslContinue"}:
            return
        if event.command.get(event.command_name) in BACKGROUND_COLLECTIONS:
            return  # the revocation poller, the search indexer and the reply sweeper, in the background
        if _change_stream_command(event.command_name, event.command):
            return  # the server's one change stream polls in the background, not per request
        self.commands.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_a_batch_costs_the_commands_of_one_message(client: AsyncClient, start_app: StartApp) -> None:
    """Read the session, move its counters, insert all, commit: per request, not per message
    (the answer is built from what was inserted, not read back)."""
    user = await make_user(client)
    session = await make_session(client, user)
    counter = _CommandCounter()
    monitoring.register(counter)  # applies to clients created from now on: the second app's
    try:
        monitored = await start_app()
    finally:
        monitoring._LISTENERS.command_listeners.remove(counter)  # noqa: SLF001 - no public unregister
    path = f"/chat/sessions/{session['_id']}/messages"
    for body, url in (({"content": "one"}, path), ({"messages": [{"content": "m"}] * 100}, path + "/batch")):
        counter.commands.clear()
        assert (await monitored.post(url, json=body, headers=user.headers)).status_code == 201
        assert sorted(counter.commands) == sorted(["find", "update", "insert", "commitTransaction"]), url


async def test_forward_reads_return_what_is_new(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}/messages"
    await client.post(
        path + "/batch", json={"messages": [{"content": f"m{i}"} for i in range(1, 8)]}, headers=user.headers
    )

    page = (await client.get(path, params={"after_seq": 2, "limit": 3}, headers=user.headers)).json()
    assert [m["seq"] for m in page["items"]] == [3, 4, 5] and page["next_cursor"]
    rest = (await client.get(path, params={"cursor": page["next_cursor"], "limit": 3}, headers=user.headers)).json()
    assert [m["seq"] for m in rest["items"]] == [6, 7] and rest["next_cursor"] is None
    caught_up = (await client.get(path, params={"after_seq": 7}, headers=user.headers)).json()
    assert caught_up == {"items": [], "next_cursor": None}
    beyond_int64 = await client.get(path, params={"after_seq": 2**70}, headers=user.headers)
    assert beyond_int64.json() == {"items": [], "next_cursor": None}
    await post_message(client, user, session["_id"], "m8")
    new = (await client.get(path, params={"after_seq": 7}, headers=user.headers)).json()
    assert [m["content"] for m in new["items"]] == ["m8"]
    everything = (await client.get(path, params={"after_seq": 0, "limit": 1000}, headers=user.headers)).json()
    assert [m["seq"] for m in everything["items"]] == list(range(1, 9))

    for params in ({"after_seq": -1}, {"limit": 1001}, {"after_seq": "x"}):
        assert (await client.get(path, params=params, headers=user.headers)).status_code == 422, params
    both = await client.get(path, params={"after_seq": 1, "cursor": page["next_cursor"]}, headers=user.headers)
    assert both.status_code == 400


async def test_a_forward_page_read_beside_a_commit_misses_nothing(
    client: AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forward page is read beside its session. When a batch commits between the page's read
    and the session's, the page still holds every message up to where its cursor goes on."""
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}/messages"
    await client.post(
        path + "/batch", json={"messages": [{"content": f"m{i}"} for i in (1, 2, 3)]}, headers=user.headers
    )
    read_page, read_session = repository.message_page, repository.find_owned_session
    committed = asyncio.Event()
    session_reads = itertools.count()

    async def page_then_commit(*args: Any) -> list[Document]:
        documents = await read_page(*args)
        if not committed.is_set():
            later = [MessageCreate(content=f"m{i}") for i in (4, 5, 6)]
            await service.append_messages(app.state.database, session["_id"], ObjectId(user.id), later, None, True)
            committed.set()
        return documents

    async def session_after_commit(*args: Any, **kwargs: Any) -> Document | None:
        if next(session_reads) == 0:  # the page's own session read; the append's goes at once
            await asyncio.wait_for(committed.wait(), 30)
        return await read_session(*args, **kwargs)

    monkeypatch.setattr(repository, "message_page", page_then_commit)
    monkeypatch.setattr(repository, "find_owned_session", session_after_commit)
    page = (await client.get(path, params={"after_seq": 0, "limit": 5}, headers=user.headers)).json()
    assert [m["content"] for m in page["items"]] == ["m1", "m2", "m3", "m4", "m5"]
    rest = (await client.get(path, params={"cursor": page["next_cursor"]}, headers=user.headers)).json()
    assert [m["content"] for m in rest["items"]] == ["m6"] and rest["next_cursor"] is None


async def test_a_page_of_a_session_not_yours_is_404_whatever_the_position(client: AsyncClient) -> None:
    owner, stranger = await make_user(client), await make_user(client)
    session = await make_session(client, owner)
    path = f"/chat/sessions/{session['_id']}/messages"
    await client.post(path + "/batch", json={"messages": [{"content": "x"}] * 3}, headers=owner.headers)
    cursor = (await client.get(path, params={"limit": 1}, headers=owner.headers)).json()["next_cursor"]
    for params in ({}, {"after_seq": 0}, {"cursor": cursor}, {"cursor": "not-a-cursor"}):
        response = await client.get(path, params=params, headers=stranger.headers)
        assert response.status_code == 404 and response.json() == {"detail": "Chat session not found"}, params


async def test_a_forward_cursor_cannot_be_used_on_another_session(client: AsyncClient) -> None:
    user = await make_user(client)
    first, second = await make_session(client, user), await make_session(client, user)
    for session in (first, second):
        await client.post(
            f"/chat/sessions/{session['_id']}/messages/batch",
            json={"messages": [{"content": "x"}] * 3},
            headers=user.headers,
        )
    page = (
        await client.get(
            f"/chat/sessions/{first['_id']}/messages", params={"after_seq": 0, "limit": 1}, headers=user.headers
        )
    ).json()
    other = await client.get(
        f"/chat/sessions/{second['_id']}/messages", params={"cursor": page["next_cursor"]}, headers=user.headers
    )
    assert other.status_code == 400
