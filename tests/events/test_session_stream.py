"""GET /chat/sessions/{id}/events: one session's messages, resumable from any seq (replayed
from the messages collection, then live), 404 like the REST routes."""

from __future__ import annotations

from httpx import AsyncClient

from tests.events.sse import open_stream
from tests.factories import make_session, make_user, post_message

QUIET_SECONDS = 1.0


async def test_replays_from_any_seq_then_continues_live_without_gap_or_repeat(
    client: AsyncClient, base_url: str
) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}/events"
    stored = [await post_message(client, user, session["_id"], f"old {i}") for i in range(5)]
    async with open_stream(base_url, path, user.headers, params={"after_seq": 2}) as stream:
        live = await post_message(client, user, session["_id"], "new")
        events = await stream.collect(QUIET_SECONDS)
    assert [e.json for e in events] == [*stored[2:], live]
    assert [e.id for e in events] == ["3", "4", "5", "6"]
    assert {e.event for e in events} == {"message.created"}


async def test_disconnect_post_three_reconnect_with_last_event_id_gets_exactly_those(
    client: AsyncClient, base_url: str
) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}/events"
    async with open_stream(base_url, path, user.headers) as stream:
        await post_message(client, user, session["_id"], "seen")
        seen = await stream.until("message.created")
    missed = [await post_message(client, user, session["_id"], f"missed {i}") for i in range(3)]
    async with open_stream(base_url, path, {**user.headers, "Last-Event-ID": str(seen.id)}) as stream:
        events = await stream.collect(QUIET_SECONDS)
    assert [e.json for e in events] == missed


async def test_someone_elses_session_is_404_like_rest_and_a_bad_last_event_id_is_400(
    client: AsyncClient, base_url: str
) -> None:
    owner, stranger = await make_user(client), await make_user(client)
    session = await make_session(client, owner)
    path = f"/chat/sessions/{session['_id']}/events"
    rest = await client.get(f"/chat/sessions/{session['_id']}", headers=stranger.headers)
    stream = await client.get(path, headers=stranger.headers)
    assert stream.status_code == rest.status_code == 404
    assert stream.json() == rest.json()
    assert (await client.get("/chat/sessions/not-an-id/events", headers=owner.headers)).status_code == 404
    bad = await client.get(path, headers={**owner.headers, "Last-Event-ID": "<script>"})
    assert bad.status_code == 400
    assert "<script>" not in bad.text


async def test_the_stream_ends_when_its_session_is_deleted(client: AsyncClient, base_url: str) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    async with open_stream(base_url, f"/chat/sessions/{session['_id']}/events", user.headers) as stream:
        assert (await client.delete(f"/chat/sessions/{session['_id']}", headers=user.headers)).status_code == 204
        assert await stream.next(timeout=2) is None


async def test_a_session_stream_goes_on_with_the_new_seqs_after_a_clear(client: AsyncClient, base_url: str) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    for i in range(3):
        await post_message(client, user, session["_id"], f"old {i}")
    path = f"/chat/sessions/{session['_id']}/events"
    async with open_stream(base_url, path, user.headers) as stream:
        assert (
            await client.delete(f"/chat/sessions/{session['_id']}/messages", headers=user.headers)
        ).status_code == 204
        new = await post_message(client, user, session["_id"], "after the clear")
        events = await stream.collect(QUIET_SECONDS)
    assert [e.json for e in events] == [new]
