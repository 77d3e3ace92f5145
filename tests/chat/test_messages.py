from __future__ import annotations

from bson import ObjectId
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import MESSAGES, SESSIONS, Document
from tests.chat.test_sessions import ISO_UTC
from tests.factories import all_pages, make_session, make_user, post_message


async def test_post_message_returns_it_and_moves_the_session_counters(
    client: AsyncClient, db: AsyncDatabase[Document]
) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    response = await client.post(
        f"/chat/sessions/{session['_id']}/messages", json={"content": "Hi <b>there</b>"}, headers=user.headers
    )
    assert response.status_code == 201
    message = response.json()
    assert set(message) == {"_id", "session_id", "user_id", "role", "content", "metadata", "seq", "created_at"}
    assert message["role"] == "user" and message["seq"] == 1 and message["content"] == "Hi <b>there</b>"
    assert message["session_id"] == session["_id"] and message["user_id"] == user.id
    assert ISO_UTC.match(message["created_at"])

    reply = await post_message(client, user, session["_id"], "Hello!", role="assistant")
    assert reply["seq"] == 2 and reply["role"] == "assistant"

    updated = (await client.get(f"/chat/sessions/{session['_id']}", headers=user.headers)).json()
    assert updated["message_count"] == 2
    assert updated["last_message_at"] == reply["created_at"] == updated["updated_at"]
    stored = await db[SESSIONS].find_one({"_id": ObjectId(session["_id"])})
    assert stored is not None and stored["message_count"] == 2


async def test_message_validation(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}/messages"
    bad = [
        {},
        {"content": ""},
        {"content": " \n\t"},
        {"content": "x" * 32_001},
        {"content": "hi", "role": "admin"},
        {"content": "hi", "seq": 7},
        {"content": "hi", "_id": ""},
        {"content": "hi", "session_id": session["_id"]},
    ]
    for payload in bad:
        response = await client.post(path, json=payload, headers=user.headers)
        assert response.status_code == 422, payload
    for role in ("user", "assistant", "system", "tool"):
        assert (await client.post(path, json={"content": "ok", "role": role}, headers=user.headers)).status_code == 201
    assert (await client.post(path, json={"content": "x" * 32_000}, headers=user.headers)).status_code == 201


async def test_newest_page_first_oldest_to_newest_inside(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    for i in range(1, 8):
        await post_message(client, user, session["_id"], f"m{i}")
    path = f"/chat/sessions/{session['_id']}/messages"

    first = (await client.get(path, params={"limit": 3}, headers=user.headers)).json()
    assert [m["content"] for m in first["items"]] == ["m5", "m6", "m7"]
    second = (await client.get(path, params={"limit": 3, "cursor": first["next_cursor"]}, headers=user.headers)).json()
    assert [m["content"] for m in second["items"]] == ["m2", "m3", "m4"]
    third = (await client.get(path, params={"limit": 3, "cursor": second["next_cursor"]}, headers=user.headers)).json()
    assert [m["content"] for m in third["items"]] == ["m1"] and third["next_cursor"] is None

    everything = (await client.get(path, headers=user.headers)).json()
    assert [m["seq"] for m in everything["items"]] == list(range(1, 8)) and everything["next_cursor"] is None


async def test_empty_session_has_an_empty_page(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    page = (await client.get(f"/chat/sessions/{session['_id']}/messages", headers=user.headers)).json()
    assert page == {"items": [], "next_cursor": None}


async def test_paging_back_while_messages_arrive_has_no_gap_or_repeat(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    for i in range(10):
        await post_message(client, user, session["_id"], f"old{i}")
    path = f"/chat/sessions/{session['_id']}/messages"
    seen: list[int] = []
    page = (await client.get(path, params={"limit": 4}, headers=user.headers)).json()
    while True:
        seen = [m["seq"] for m in page["items"]] + seen
        await post_message(client, user, session["_id"], "new arrival")
        if page["next_cursor"] is None:
            break
        page = (await client.get(path, params={"limit": 4, "cursor": page["next_cursor"]}, headers=user.headers)).json()
    assert seen == list(range(1, 11))


async def test_a_cursor_from_another_session_or_tampered_is_rejected(client: AsyncClient) -> None:
    user = await make_user(client)
    first, second = await make_session(client, user, "a"), await make_session(client, user, "b")
    for _ in range(3):
        await post_message(client, user, first["_id"])
    page = (await client.get(f"/chat/sessions/{first['_id']}/messages?limit=1", headers=user.headers)).json()
    cursor = page["next_cursor"]
    elsewhere = await client.get(
        f"/chat/sessions/{second['_id']}/messages", params={"cursor": cursor}, headers=user.headers
    )
    assert elsewhere.status_code == 400 and elsewhere.json() == {"detail": "Invalid cursor"}
    payload, signature = cursor.split(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature
    response = await client.get(
        f"/chat/sessions/{first['_id']}/messages", params={"cursor": tampered}, headers=user.headers
    )
    assert response.status_code == 400


async def test_deleting_a_session_deletes_only_its_messages(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    user = await make_user(client)
    doomed, kept = await make_session(client, user, "doomed"), await make_session(client, user, "kept")
    for _ in range(3):
        await post_message(client, user, doomed["_id"])
        await post_message(client, user, kept["_id"])
    assert (await client.delete(f"/chat/sessions/{doomed['_id']}", headers=user.headers)).status_code == 204
    assert await db[MESSAGES].count_documents({"session_id": ObjectId(doomed["_id"])}) == 0
    remaining = await all_pages(client, user, f"/chat/sessions/{kept['_id']}/messages")
    assert len(remaining) == 3
