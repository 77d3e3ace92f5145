"""GET /chat/events: the user's own changes, live, to every open stream of theirs and to no
one else's; resumable with Last-Event-ID; freed at once when the client goes away."""

from __future__ import annotations

import asyncio
import time

from fastapi import FastAPI
from httpx import AsyncClient

from app.core.changes import ChangeHub
from tests.events.sse import EventReader, open_stream
from tests.factories import TestUser, bearer, make_session, make_user, post_message

DELIVERY_SECONDS = 1.0
QUIET_SECONDS = 1.5


async def _read_key(client: AsyncClient, user: TestUser) -> dict[str, str]:
    body = {"name": "agent", "scopes": ["read"], "current_password": user.password}
    response = await client.post("/auths/api-keys", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return bearer(response.json()["key"])


async def _names_within(reader: EventReader, names: set[str], seconds: float) -> dict[str, dict[str, object]]:
    """The data of each event named in `names`, all of which must arrive within `seconds`."""
    found: dict[str, dict[str, object]] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while names - found.keys() and (left := deadline - loop.time()) > 0:
        event = await reader.next(timeout=left)
        if event is not None and event.event in names:
            found[event.event] = event.json
    assert found.keys() == names, f"missing within {seconds} s: {names - found.keys()}"
    return found


async def test_both_streams_of_a_user_get_the_change_within_a_second_and_no_one_else_does(
    client: AsyncClient, base_url: str
) -> None:
    alice, bob = await make_user(client), await make_user(client)
    alice_key, bob_key = await _read_key(client, alice), await _read_key(client, bob)
    async with (
        open_stream(base_url, "/chat/events", alice.headers) as alice_tab,
        open_stream(base_url, "/chat/events", alice_key) as alice_agent,
        open_stream(base_url, "/chat/events", bob.headers) as bob_tab,
        open_stream(base_url, "/chat/events", bob_key) as bob_agent,
    ):
        started = time.monotonic()
        session = await make_session(client, alice, "Alice's plans")
        message = await post_message(client, alice, session["_id"], "meet at noon")
        for stream in (alice_tab, alice_agent):
            found = await _names_within(stream, {"session.created", "message.created"}, DELIVERY_SECONDS)
            assert found["session.created"] == session
            assert found["message.created"] == message
        assert time.monotonic() - started < DELIVERY_SECONDS + 0.5
        # Bob's streams are alive (they get Bob's own change) but never saw Alice's.
        await make_session(client, bob, "Bob's")
        for stream in (bob_tab, bob_agent):
            events = await stream.collect(QUIET_SECONDS)
            assert [e.event for e in events] == ["session.created"]
            assert events[0].json["title"] == "Bob's"


async def test_session_updates_and_deletes_reach_the_stream_with_the_rest_model(
    client: AsyncClient, base_url: str
) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    async with open_stream(base_url, "/chat/events", user.headers) as stream:
        await post_message(client, user, session["_id"], "one")
        counted = await stream.until("session.updated")
        assert counted.json["message_count"] == 1
        renamed = await client.patch(
            f"/chat/sessions/{session['_id']}", json={"title": "Renamed", "metadata": {"k": 1}}, headers=user.headers
        )
        assert (await stream.until("session.updated")).json == renamed.json()
        assert (await client.delete(f"/chat/sessions/{session['_id']}", headers=user.headers)).status_code == 204
        deleted = await stream.until("session.deleted")
        assert deleted.json["_id"] == session["_id"]
        assert set(deleted.json) == set(renamed.json()), "data is the REST model, nothing more"


async def test_last_event_id_replays_exactly_what_was_missed_in_order(client: AsyncClient, base_url: str) -> None:
    user, other = await make_user(client), await make_user(client)
    session = await make_session(client, user)
    async with open_stream(base_url, "/chat/events", user.headers) as stream:
        await post_message(client, user, session["_id"], "seen")
        last_id = (await stream.until("message.created")).id  # after its session.updated
    other_session = await make_session(client, other)
    missed = [await post_message(client, user, session["_id"], f"missed {i}") for i in range(3)]
    await post_message(client, other, other_session["_id"], "not yours")
    async with open_stream(base_url, "/chat/events", {**user.headers, "Last-Event-ID": str(last_id)}) as stream:
        events = await stream.collect(QUIET_SECONDS)
    messages = [e.json for e in events if e.event == "message.created"]
    assert messages == missed
    assert [e.event for e in events] == ["session.updated", "message.created"] * 3
    ids = [e.id for e in events]
    assert len(set(ids)) == len(ids) and last_id not in ids


async def test_an_unknown_last_event_id_gets_one_reset(client: AsyncClient, base_url: str) -> None:
    user = await make_user(client)
    async with open_stream(base_url, "/chat/events", {**user.headers, "Last-Event-ID": "gone-long-ago"}) as stream:
        reset = await stream.next()
        assert reset is not None and reset.event == "reset"
        assert await stream.next(timeout=1) is None, "the stream ends after a reset"


async def test_a_disconnected_client_is_unsubscribed_at_once(app: FastAPI, client: AsyncClient, base_url: str) -> None:
    hub: ChangeHub = app.state.change_hub
    user = await make_user(client)
    async with open_stream(base_url, "/chat/events", user.headers), open_stream(base_url, "/chat/events", user.headers):
        assert hub.subscriber_count == 2
    for _ in range(50):
        if hub.subscriber_count == 0:
            break
        await asyncio.sleep(0.02)
    assert hub.subscriber_count == 0


async def test_the_stream_needs_credentials_and_never_takes_them_from_the_url(
    client: AsyncClient, base_url: str
) -> None:
    user = await make_user(client)
    assert (await client.get("/chat/events")).status_code == 401
    assert (await client.get("/chat/events", params={"access_token": user.token})).status_code == 401
    assert (await client.get("/chat/events", params={"token": user.token})).status_code == 401
