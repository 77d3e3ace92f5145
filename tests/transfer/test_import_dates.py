"""Issue 21: a ChatGPT import gave every session the import's time, so the chat list of a real
export was sorted by nothing. A session takes the conversation's times (create_time,
update_time, its last message), and the list is ordered by them, from the recent-activity index."""

from __future__ import annotations

from datetime import UTC, datetime

from bson import ObjectId
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import SESSIONS, Document
from tests.explain import assert_uses_index
from tests.factories import all_pages, make_session, make_user
from tests.transfer import chatgpt_export
from tests.transfer.chatgpt_export import T0


def _at(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def test_imported_conversations_keep_their_own_times_and_the_list_is_ordered_by_them(
    client: AsyncClient, db: AsyncDatabase[Document]
) -> None:
    user = await make_user(client)
    recent = await make_session(client, user, "Today's chat")
    response = await client.post("/chat/import", content=chatgpt_export.conversations_json(), headers=user.headers)
    assert response.status_code == 200, response.text

    listed = await all_pages(client, user, "/chat/sessions", limit=1)  # one per page: the cursor walks the order
    assert [s["title"] for s in listed] == ["Today's chat", "Bread", "Lisbon day trip"]
    assert listed[0]["_id"] == recent["_id"]
    bread, lisbon = listed[1], listed[2]
    assert (lisbon["created_at"], lisbon["updated_at"], lisbon["last_message_at"]) == (
        _at(T0),  # create_time
        _at(T0 + 60),  # update_time
        _at(T0 + 60),  # its last message
    )
    assert (bread["created_at"], bread["updated_at"], bread["last_message_at"]) == (
        _at(T0 + 100),
        _at(T0 + 110),  # no update_time: its last message
        _at(T0 + 110),
    )
    again = await client.post("/chat/import", content=chatgpt_export.conversations_json(), headers=user.headers)
    assert again.json()["sessions"] == {"created": 0, "unchanged": 2}
    relisted = await all_pages(client, user, "/chat/sessions")
    assert [s["updated_at"] for s in relisted][1:] == [_at(T0 + 110), _at(T0 + 60)]
    window = {"$gte": datetime.fromtimestamp(T0, UTC), "$lt": datetime.now(UTC)}
    await assert_uses_index(db, SESSIONS, {"user_id": ObjectId(user.id), "updated_at": window})
