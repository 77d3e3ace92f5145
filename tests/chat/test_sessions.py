from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bson import ObjectId
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import MESSAGES, SESSIONS, USERS, Document
from tests.factories import all_pages, make_session, make_user, post_message

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_two_sessions_in_a_row_get_distinct_object_ids(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    """Regression: an empty-string `_id` made every second insert a DuplicateKeyError (500)."""
    user = await make_user(client)
    first = await make_session(client, user, "first")
    second = await make_session(client, user, "second")
    assert ObjectId.is_valid(first["_id"]) and len(first["_id"]) == 24
    assert ObjectId.is_valid(second["_id"]) and len(second["_id"]) == 24
    assert first["_id"] != second["_id"]


async def test_created_session_never_has_a_null_id(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    """Regression: a session was once stored with a null `_id`."""
    user = await make_user(client)
    session = await make_session(client, user)
    assert session["_id"] is not None
    stored = await db[SESSIONS].find_one({"_id": ObjectId(session["_id"])})
    assert stored is not None and stored["title"] == session["title"]


async def test_no_stored_document_has_an_empty_or_null_id(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    user = await make_user(client)
    for title in ("a", "b", "c"):
        session = await make_session(client, user, title)
        await post_message(client, user, session["_id"])
    for collection in (USERS, SESSIONS, MESSAGES):
        assert await db[collection].count_documents({"_id": {"$in": ["", None]}}) == 0
        async for document in db[collection].find({}, {"_id": 1}):
            assert isinstance(document["_id"], ObjectId)


async def test_create_session_returns_the_stored_document(client: AsyncClient) -> None:
    user = await make_user(client)
    response = await client.post("/chat/sessions", json={"title": "  Trip planning  "}, headers=user.headers)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"_id", "user_id", "title", "name", "platform", "metadata", "message_count"} | {
        "last_message_at",
        "created_at",
        "updated_at",
    }
    assert body["title"] == "Trip planning"
    assert body["user_id"] == user.id
    assert body["message_count"] == 0 and body["last_message_at"] is None
    assert ISO_UTC.match(body["created_at"]) and body["created_at"] == body["updated_at"]


async def test_create_session_validation(client: AsyncClient) -> None:
    user = await make_user(client)
    for payload in ({}, {"title": ""}, {"title": "   "}, {"title": "x" * 201}, {"title": 5}):
        response = await client.post("/chat/sessions", json=payload, headers=user.headers)
        assert response.status_code == 422, payload
        assert "detail" in response.json()
    ok = await client.post("/chat/sessions", json={"title": "x" * 200}, headers=user.headers)
    assert ok.status_code == 201


async def test_forged_fields_in_a_session_body_are_rejected(client: AsyncClient) -> None:
    user = await make_user(client)
    for forged in ({"_id": ""}, {"_id": None}, {"user_id": "6b01333e48044420526058af"}, {"message_count": 9}):
        response = await client.post("/chat/sessions", json={"title": "t", **forged}, headers=user.headers)
        assert response.status_code == 422, forged


async def test_get_rename_and_delete_a_session(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    user = await make_user(client)
    session = await make_session(client, user, "old")
    await post_message(client, user, session["_id"], "one")
    await post_message(client, user, session["_id"], "two")
    path = f"/chat/sessions/{session['_id']}"

    fetched = await client.get(path, headers=user.headers)
    assert fetched.status_code == 200 and fetched.json()["message_count"] == 2

    renamed = await client.patch(path, json={"title": "new"}, headers=user.headers)
    assert renamed.status_code == 200
    assert renamed.json()["title"] == "new"
    assert renamed.json()["updated_at"] >= session["updated_at"]
    assert (await client.patch(path, json={"title": ""}, headers=user.headers)).status_code == 422

    deleted = await client.delete(path, headers=user.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    assert (await client.get(path, headers=user.headers)).status_code == 404
    assert (await client.delete(path, headers=user.headers)).status_code == 404
    assert await db[MESSAGES].count_documents({"session_id": ObjectId(session["_id"])}) == 0


async def test_another_users_session_is_404_everywhere(client: AsyncClient) -> None:
    owner, intruder = await make_user(client), await make_user(client)
    session = await make_session(client, owner, "private")
    await post_message(client, owner, session["_id"], "secret")
    path = f"/chat/sessions/{session['_id']}"
    missing = f"/chat/sessions/{ObjectId()}"
    for target in (path, missing, "/chat/sessions/not-an-id"):
        responses = [
            await client.get(target, headers=intruder.headers),
            await client.patch(target, json={"title": "mine"}, headers=intruder.headers),
            await client.get(f"{target}/messages", headers=intruder.headers),
            await client.post(f"{target}/messages", json={"content": "hi"}, headers=intruder.headers),
            await client.delete(target, headers=intruder.headers),
        ]
        assert [r.status_code for r in responses] == [404] * 5, target
        assert {r.json()["detail"] for r in responses} == {"Chat session not found"}
    still_there = await client.get(path, headers=owner.headers)
    assert still_there.json()["title"] == "private" and still_there.json()["message_count"] == 1


async def test_list_shows_only_my_sessions_most_recently_active_first(client: AsyncClient, read_strategy: str) -> None:
    me, other = await make_user(client), await make_user(client)
    oldest = await make_session(client, me, "oldest")
    middle = await make_session(client, me, "middle")
    newest = await make_session(client, me, "newest")
    await make_session(client, other, "not mine")
    await post_message(client, me, oldest["_id"])  # activity moves it to the top

    response = await client.get("/chat/sessions", headers=me.headers)
    assert response.status_code == 200
    titles = [s["title"] for s in response.json()["items"]]
    assert titles == ["oldest", "newest", "middle"]
    assert response.json()["next_cursor"] is None
    assert newest["_id"] != middle["_id"]


async def test_sessions_page_through_with_no_gap_or_repeat(client: AsyncClient, read_strategy: str) -> None:
    user = await make_user(client)
    created = [await make_session(client, user, f"s{i}") for i in range(7)]
    listed = await all_pages(client, user, "/chat/sessions", limit=3)
    assert [s["_id"] for s in listed] == [s["_id"] for s in reversed(created)]


async def test_sessions_with_identical_activity_times_page_by_id(
    client: AsyncClient, db: AsyncDatabase[Document], read_strategy: str
) -> None:
    user = await make_user(client)
    ids = [(await make_session(client, user, f"s{i}"))["_id"] for i in range(5)]
    same_time = (await db[SESSIONS].find_one({"_id": ObjectId(ids[0])}) or {})["updated_at"]
    await db[SESSIONS].update_many({"user_id": ObjectId(user.id)}, {"$set": {"updated_at": same_time}})
    listed = await all_pages(client, user, "/chat/sessions", limit=2)
    assert [s["_id"] for s in listed] == sorted(ids, reverse=True)


async def test_sessions_spread_over_years_are_all_listed(
    client: AsyncClient, db: AsyncDatabase[Document], read_strategy: str
) -> None:
    user = await make_user(client)
    now = datetime.now(UTC)
    # The first one was touched by a server whose clock runs an hour ahead.
    ages = [-timedelta(hours=1), timedelta(seconds=5), timedelta(days=3), timedelta(days=400), timedelta(days=365 * 30)]
    for index, age in enumerate(ages):
        session = await make_session(client, user, f"age{index}")
        await db[SESSIONS].update_one({"_id": ObjectId(session["_id"])}, {"$set": {"updated_at": now - age}})
    listed = await all_pages(client, user, "/chat/sessions", limit=1)
    assert [s["title"] for s in listed] == ["age0", "age1", "age2", "age3", "age4"]
    assert [s["title"] for s in (await all_pages(client, user, "/chat/sessions", limit=50))] == [
        "age0",
        "age1",
        "age2",
        "age3",
        "age4",
    ]


async def test_page_limits_and_forged_cursors(client: AsyncClient) -> None:
    user = await make_user(client)
    for params in ({"limit": 0}, {"limit": 201}, {"limit": "many"}):
        assert (await client.get("/chat/sessions", params=params, headers=user.headers)).status_code == 422
    assert (await client.get("/chat/sessions", params={"limit": 200}, headers=user.headers)).status_code == 200
    for cursor in ("garbage", "eyJ0IjoxfQ.AAAA", "a.b.c", "", "x" * 600):
        response = await client.get("/chat/sessions", params={"cursor": cursor}, headers=user.headers)
        assert response.status_code in (400, 422), cursor
        assert "detail" in response.json()
