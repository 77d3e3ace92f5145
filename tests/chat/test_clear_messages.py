"""DELETE /chat/sessions/{id}/messages: the messages go, the counters reset, the session stays."""

from __future__ import annotations

from httpx import AsyncClient

from tests.factories import all_pages, make_session, make_user, post_message


async def test_clear_deletes_the_messages_resets_the_counters_and_keeps_the_session(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    other = await make_session(client, user, title="untouched")
    for i in range(3):
        await post_message(client, user, session["_id"], f"m{i}")
    kept = await post_message(client, user, other["_id"], "stays")
    path = f"/chat/sessions/{session['_id']}/messages"

    assert (await client.delete(path, headers=user.headers)).status_code == 204
    after = (await client.get(f"/chat/sessions/{session['_id']}", headers=user.headers)).json()
    assert after["message_count"] == 0 and after["last_message_at"] is None
    assert after["title"] == session["title"]
    assert await all_pages(client, user, path) == []
    assert (await client.get(f"{path}?after_seq=0", headers=user.headers)).json()["items"] == []
    again = await post_message(client, user, session["_id"], "fresh start")
    assert again["seq"] == 1
    assert await all_pages(client, user, f"/chat/sessions/{other['_id']}/messages") == [kept]

    # Idempotent: clearing twice answers 204 again.
    assert (await client.delete(path, headers=user.headers)).status_code == 204
    assert (await client.delete(path, headers=user.headers)).status_code == 204


async def test_someone_elses_or_a_missing_session_is_404_and_nothing_is_deleted(client: AsyncClient) -> None:
    owner, stranger = await make_user(client), await make_user(client)
    session = await make_session(client, owner)
    message = await post_message(client, owner, session["_id"], "mine")
    path = f"/chat/sessions/{session['_id']}/messages"
    assert (await client.delete(path, headers=stranger.headers)).status_code == 404
    assert (await client.delete("/chat/sessions/not-an-id/messages", headers=owner.headers)).status_code == 404
    assert await all_pages(client, owner, path) == [message]
