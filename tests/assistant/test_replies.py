"""Asking for a reply: stored with the question in one transaction, generated in the
background, complete with usage and timings."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.assistant.conftest import UPSTREAM_KEY
from tests.assistant.fake_upstream import FakeUpstream
from tests.assistant.helpers import sse_events, wait_for_reply
from tests.factories import make_session, make_user, wait_for_search_index


async def test_post_with_reply_stores_both_and_completes(
    client: AsyncClient, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    response = await client.post(
        f"/chat/sessions/{session['_id']}/messages",
        json={"content": "Say hello", "reply": {"agent": "helper"}},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["message"]["content"] == "Say hello" and body["message"]["seq"] == 1
    reply = body["reply"]
    assert (reply["role"], reply["status"], reply["content"], reply["seq"]) == ("assistant", "streaming", "", 2)
    assert reply["metadata"] == {"model": "fake-small", "agent": "helper"}
    assert body["message"]["_id"] < reply["_id"]  # ids follow the seqs (newest first breaks ties by id)

    done = await wait_for_reply(client, user, session["_id"], reply["_id"])
    assert done["status"] == "complete" and done["content"] == "Hello, world!"
    metadata = done["metadata"]
    assert metadata["usage"] == {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
    assert metadata["finish_reason"] == "stop"
    assert isinstance(metadata["first_token_ms"], int) and metadata["duration_ms"] >= metadata["first_token_ms"]
    assert upstream.last_messages() == [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Say hello"},
    ]
    assert upstream.api_keys[-1] == UPSTREAM_KEY
    assert upstream.requests[-1]["stream_options"] == {"include_usage": True}
    stored = (await client.get(f"/chat/sessions/{session['_id']}", headers=user.headers)).json()
    assert stored["message_count"] == 2


async def test_session_agent_replies_and_regenerate_after_failure(
    client: AsyncClient, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    user = await make_user(client)
    created = await client.post("/chat/sessions", json={"title": "t", "agent": "helper"}, headers=user.headers)
    assert created.status_code == 201 and created.json()["agent"] == "helper"
    session_id = created.json()["_id"]
    upstream.scripts["fake-small"] = upstream.default.__class__(status=500, error_message="boom " + UPSTREAM_KEY)
    first = await client.post(
        f"/chat/sessions/{session_id}/messages", json={"content": "hi", "reply": True}, headers=user.headers
    )
    failed = await wait_for_reply(client, user, session_id, first.json()["reply"]["_id"])
    assert failed["status"] == "failed"
    assert failed["metadata"]["error"]["status"] == 500
    assert failed["metadata"]["error"]["reason"] == "upstream_error"
    assert UPSTREAM_KEY not in str(failed)  # never the key, even when the upstream echoes it

    del upstream.scripts["fake-small"]
    retry = await client.post(f"/chat/sessions/{session_id}/replies", headers=user.headers)
    assert retry.status_code == 202, retry.text
    assert retry.json()["seq"] == 3
    done = await wait_for_reply(client, user, session_id, retry.json()["_id"])
    assert done["status"] == "complete"
    # the failed reply is not sent upstream again
    assert upstream.last_messages()[1:] == [{"role": "user", "content": "hi"}]


async def test_stream_in_the_response(client: AsyncClient, agent: dict[str, Any]) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    response = await client.post(  # Accept: text/event-stream (the Python client sends ?stream=true)
        f"/chat/sessions/{session['_id']}/messages",
        json={"content": "hi", "reply": {"agent": "helper"}},
        headers={**user.headers, "Accept": "text/event-stream"},
    )
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert events[0][0] == "reply.created" and events[0][1]["message"]["content"] == "hi"
    deltas = "".join(data["text"] for name, data in events if name == "reply.delta")
    assert deltas == "Hello, world!"
    assert events[-1][0] == "reply.done" and events[-1][1]["status"] == "complete"
    assert events[-1][1]["content"] == "Hello, world!"


async def test_no_model_configured_is_503(client: AsyncClient, start_app: Any) -> None:
    plain = await start_app(model_base_url="")
    user = await make_user(plain)
    session = await make_session(plain, user)
    for method, path, body in (
        ("POST", f"/chat/sessions/{session['_id']}/messages", {"content": "hi", "reply": True}),
        ("POST", f"/chat/sessions/{session['_id']}/replies", None),
        ("GET", "/models", None),
        ("GET", "/agents", None),
    ):
        response = await plain.request(method, path, json=body, headers=user.headers)
        assert response.status_code == 503, (path, response.text)
        assert response.json() == {"detail": "no model is configured: set MODEL_BASE_URL"}
    assert (await plain.get(f"/chat/sessions/{session['_id']}/messages", headers=user.headers)).json()["items"] == []


async def test_a_completed_reply_is_found_by_search_in_its_final_words(
    client: AsyncClient, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    """A reply is stored empty while it streams and updated as it grows: search indexes it again
    once its text is final (search is built behind the writes, app.chat.search_indexer)."""
    user = await make_user(client)
    session = await make_session(client, user)
    posted = await client.post(
        f"/chat/sessions/{session['_id']}/messages",
        json={"content": "Say hi", "reply": {"agent": "helper"}},
        headers=user.headers,
    )
    assert posted.status_code == 201, posted.text
    done = await wait_for_reply(client, user, session["_id"], posted.json()["reply"]["_id"])
    assert done["content"] == "Hello, world!"
    await wait_for_search_index(client)
    hits = (await client.get("/chat/search", params={"q": "world"}, headers=user.headers)).json()["items"]
    assert [hit["message"]["id"] for hit in hits] == [done["_id"]]
