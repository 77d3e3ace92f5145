from __future__ import annotations

from bson import ObjectId
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import SESSIONS, Document
from tests.factories import make_session, make_user


async def test_two_sessions_in_a_row_get_distinct_object_ids(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    """Regression: an empty-string `_id` made every second insert a DuplicateKeyError (500)."""
    user = await make_user(client)
    first = await make_session(client, user, "first")
    second = await make_session(client, user, "second")
    assert ObjectId.is_valid(first["_id"]) and len(first["_id"]) == 24
    assert ObjectId.is_valid(second["_id"]) and len(second["_id"]) == 24
    assert first["_id"] != second["_id"]
    stored_ids = [doc["_id"] async for doc in db[SESSIONS].find({}, {"_id": 1})]
    assert all(isinstance(i, ObjectId) for i in stored_ids)
