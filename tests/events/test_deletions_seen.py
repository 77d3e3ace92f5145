"""Issue 21: a deletion seen elsewhere was lost. The event of a deleted session came from the
update that marked it, and the change stream looked the document up when it read the event:
when the delete had already run, the look-up was empty and the event was dropped (a watcher
got 12 of 30 deletions under load). Every event now carries its owner in the change itself.

The change stream's reader is held here so that every write runs before its event is read."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from httpx import AsyncClient
from pymongo.asynchronous.change_stream import AsyncChangeStream

from tests.events.sse import EventReader, open_stream
from tests.factories import make_session, make_user, post_message

SESSIONS = 30
DELIVERY_SECONDS = 15.0


class HeldReader:
    """Holds the change stream's reader before its next read while closed."""

    def __init__(self) -> None:
        self.released = asyncio.Event()
        self.released.set()
        self.waiting = asyncio.Event()

    def hold(self) -> None:
        self.waiting.clear()
        self.released.clear()

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def held_reader(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldReader]:
    held = HeldReader()
    original = AsyncChangeStream.try_next

    async def try_next(stream: AsyncChangeStream[Any]) -> Any:
        if not held.released.is_set():
            held.waiting.set()
            await held.released.wait()
        return await original(stream)

    monkeypatch.setattr(AsyncChangeStream, "try_next", try_next)
    yield held
    held.release()


async def _events_until(reader: EventReader, wanted: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    """The events by name until `wanted` (name: count) have arrived, or the deadline."""
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in wanted}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DELIVERY_SECONDS
    while any(len(found[n]) < c for n, c in wanted.items()) and (left := deadline - loop.time()) > 0:
        event = await reader.next(timeout=left)
        if event is not None and event.event in found:
            found[event.event].append(event.json)
    return found


async def test_every_deletion_reaches_a_watcher_even_when_the_delete_runs_before_its_event_is_read(
    client: AsyncClient, base_url: str, held_reader: HeldReader
) -> None:
    user = await make_user(client)
    sessions = [await make_session(client, user, f"chat {n}") for n in range(SESSIONS)]
    kept = await make_session(client, user, "kept")
    async with open_stream(base_url, "/chat/events", user.headers) as watcher:
        held_reader.hold()
        await asyncio.wait_for(held_reader.waiting.wait(), 10)  # the reader is now held before a read
        deletes = [client.delete(f"/chat/sessions/{s['_id']}", headers=user.headers) for s in sessions]
        assert {r.status_code for r in await asyncio.gather(*deletes)} == {204}
        created = await make_session(client, user, "made meanwhile")
        message = await post_message(client, user, kept["_id"], "written meanwhile")
        held_reader.release()
        found = await _events_until(watcher, {"session.deleted": SESSIONS, "session.created": 1, "message.created": 1})
    assert sorted(e["_id"] for e in found["session.deleted"]) == sorted(s["_id"] for s in sessions)
    assert {e["title"] for e in found["session.deleted"]} == {s["title"] for s in sessions}
    assert found["session.created"] == [created]
    assert found["message.created"] == [message]


async def test_a_session_stream_ends_when_its_session_is_deleted_before_the_event_is_read(
    client: AsyncClient, base_url: str, held_reader: HeldReader
) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    async with open_stream(base_url, f"/chat/sessions/{session['_id']}/events", user.headers) as stream:
        held_reader.hold()
        await asyncio.wait_for(held_reader.waiting.wait(), 10)
        assert (await client.delete(f"/chat/sessions/{session['_id']}", headers=user.headers)).status_code == 204
        held_reader.release()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DELIVERY_SECONDS
        while await stream.next(timeout=deadline - loop.time()) is not None:
            pass
        assert loop.time() < deadline, "the stream did not end"
