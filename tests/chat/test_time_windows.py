"""A time window includes its lower bound, on the indexes the session list and search read in
windows (user, [term,] time descending, _id descending). SecantusDB 0.7.0b3 drops the
documents exactly at a `$gte` bound on such an index, and the next window's `$lt` leaves
them out too: a session or a search hit at a window's edge was never listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from app.chat import repository, search_repository
from app.chat.search_repository import TimeSlice
from app.core.db import MESSAGE_TERMS, SESSIONS, Document

EDGE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TIMES = [EDGE + timedelta(seconds=offset) for offset in (-2, -1, 0, 1, 2)]


async def test_the_session_list_window_holds_its_lower_bound(db: AsyncDatabase[Document]) -> None:
    user_id = ObjectId()
    await db[SESSIONS].insert_many([{"user_id": user_id, "updated_at": at, "title": "t"} for at in TIMES])
    newer = await repository.sessions_active_in(db, user_id, None, EDGE, None, None)
    older = await repository.sessions_active_in(db, user_id, None, None, EDGE, None)
    assert [s["updated_at"] for s in newer] == TIMES[:1:-1]
    assert [s["updated_at"] for s in older] == TIMES[1::-1]
    bounded = await repository.sessions_active_in(db, user_id, None, EDGE, TIMES[-1], None)
    assert [s["updated_at"] for s in bounded] == [TIMES[3], TIMES[2]]


async def test_a_search_window_holds_its_lower_bound(db: AsyncDatabase[Document]) -> None:
    user_id = ObjectId()
    await db[MESSAGE_TERMS].insert_many(
        [{"user_id": user_id, "session_id": ObjectId(), "terms": ["word"], "created_at": at} for at in TIMES]
    )
    for window, expected in (
        (TimeSlice(EDGE, None), TIMES[:1:-1]),
        (TimeSlice(None, EDGE), TIMES[1::-1]),
        (TimeSlice(EDGE, TIMES[-1]), [TIMES[3], TIMES[2]]),
    ):
        found = await search_repository.postings_in(db, user_id, "word", window, 10)
        assert [p["created_at"] for p in found] == expected, window
