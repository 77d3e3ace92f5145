"""GET /chat/search: every word, the last one as a prefix, case and accents folded, newest
first in keyset pages, index-backed, and true after renames and deletes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from fastapi import FastAPI
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.chat import search
from app.chat.search_repository import TimeSlice
from app.chat.terms import MAX_TERMS_PER_TEXT, PREFIX_MARK, text_terms
from app.chat.upgrade import LOOKUP_RECORDS, TERMS_OFF_MESSAGES, upgrade_chat_documents
from app.core.db import (
    MESSAGE_TERMS,
    MESSAGES,
    MIGRATIONS,
    SEARCH_INDEXER,
    SESSION_TITLES,
    SESSIONS,
    TERM_COUNT_DELTAS,
    TERM_COUNTS,
    Document,
)
from tests.conftest import StartApp
from tests.explain import assert_uses_index
from tests.factories import TestUser, all_pages, make_session, make_user, post_message, wait_for_search_index


async def _search(client: AsyncClient, user: TestUser, q: str, **params: Any) -> list[dict[str, Any]]:
    await wait_for_search_index(client)
    return await all_pages(client, user, "/chat/search", q=q, **params)


def _contents(hits: list[dict[str, Any]]) -> list[str]:
    return [hit["snippet"]["text"] for hit in hits if hit["kind"] == "message"]


async def test_every_word_must_match_and_the_last_is_a_prefix(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user, "Trip planning")
    for text in ("the blue train leaves at noon", "a blue boat", "the red train", "trains are blue"):
        await post_message(client, user, session["_id"], text)
    assert _contents(await _search(client, user, "blue train")) == ["trains are blue", "the blue train leaves at noon"]
    assert _contents(await _search(client, user, "train blue")) == [
        "the blue train leaves at noon"
    ]  # "trains" is not "train"
    assert _contents(await _search(client, user, "blue tra")) == ["trains are blue", "the blue train leaves at noon"]
    assert _contents(await _search(client, user, "b")) == [
        "trains are blue",
        "a blue boat",
        "the blue train leaves at noon",
    ]
    assert await _search(client, user, "purple") == []


async def test_case_and_accents_are_folded_both_ways(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    await post_message(client, user, session["_id"], "Le CAFÉ de la Gare, naïve crème brûlée")
    for q in ("cafe", "Café", "CAFÉ gare", "naive creme brulee", "BRÛL", "ＣＡＦＥ"):  # the last: full-width letters
        hits = await _search(client, user, q)
        assert len(hits) == 1, q
    (hit,) = await _search(client, user, "creme brul")
    text = hit["snippet"]["text"]
    assert [text[start:end] for start, end in hit["snippet"]["highlights"]] == ["crème", "brûlée"]


async def test_a_hit_carries_its_session_message_and_offsets(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user, "Recipes")
    await post_message(client, user, session["_id"], "first")
    long_text = "word " * 100 + "the <b>needle</b> is here " + "word " * 100
    message = await post_message(client, user, session["_id"], long_text, role="assistant")
    (hit,) = await _search(client, user, "needle")
    assert hit["kind"] == "message"
    assert hit["session"] == {"id": session["_id"], "title": "Recipes", "platform": "api"}
    assert hit["message"] == {"id": message["_id"], "seq": 2, "role": "assistant", "created_at": message["created_at"]}
    snippet = hit["snippet"]
    assert snippet["truncated_start"] and snippet["truncated_end"] and len(snippet["text"]) <= 160
    assert "<b>needle</b>" in snippet["text"]  # the server sends text, never markup of its own
    ((start, end),) = snippet["highlights"]
    assert snippet["text"][start:end] == "needle"


async def test_titles_match_and_renames_and_deletes_keep_search_true(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user, "Garden ideas")
    await post_message(client, user, session["_id"], "tomatoes need sun")
    (title_hit,) = await _search(client, user, "garden")
    assert title_hit["kind"] == "title" and title_hit["message"] is None
    assert title_hit["session"]["id"] == session["_id"]

    response = await client.patch(f"/chat/sessions/{session['_id']}", json={"title": "Balcony"}, headers=user.headers)
    assert response.status_code == 200
    assert await _search(client, user, "garden") == []
    (renamed,) = await _search(client, user, "balc")
    assert renamed["session"]["title"] == "Balcony"
    (message_hit,) = await _search(client, user, "tomatoes")
    assert message_hit["session"]["title"] == "Balcony"

    assert (await client.delete(f"/chat/sessions/{session['_id']}", headers=user.headers)).status_code == 204
    assert await _search(client, user, "tomatoes") == []
    assert await _search(client, user, "balcony") == []


async def test_a_deleted_sessions_leftover_messages_are_never_found(
    client: AsyncClient, db: AsyncDatabase[Document]
) -> None:
    """A delete interrupted between the session and its messages leaves messages behind:
    search must not show them."""
    user = await make_user(client)
    session = await make_session(client, user)
    await post_message(client, user, session["_id"], "orphaned words")
    await db[SESSIONS].delete_one({"_id": ObjectId(session["_id"])})
    assert await _search(client, user, "orphaned") == []


async def test_other_users_data_is_never_found(client: AsyncClient) -> None:
    owner, stranger = await make_user(client), await make_user(client)
    session = await make_session(client, owner, "Secret plans")
    await post_message(client, owner, session["_id"], "the secret password is swordfish")
    assert await _search(client, stranger, "secret") == []
    assert await _search(client, stranger, "swordfish") == []
    response = await client.get(
        "/chat/search", params={"q": "secret", "session_id": session["_id"]}, headers=stranger.headers
    )
    assert response.status_code == 404
    missing = await client.get(
        "/chat/search", params={"q": "secret", "session_id": str(ObjectId())}, headers=stranger.headers
    )
    assert missing.status_code == 404 and missing.json() == response.json()


async def test_filters_by_session_and_platform(client: AsyncClient) -> None:
    user = await make_user(client)
    first = await make_session(client, user, "one")
    created = await client.post("/chat/sessions", json={"title": "two", "platform": "slack"}, headers=user.headers)
    second = created.json()
    await post_message(client, user, first["_id"], "apples in one")
    await post_message(client, user, second["_id"], "apples in two")
    assert _contents(await _search(client, user, "apples", session_id=first["_id"])) == ["apples in one"]
    assert _contents(await _search(client, user, "apples", platform="slack")) == ["apples in two"]
    assert len(await _search(client, user, "apples")) == 2


async def test_pages_are_newest_first_without_gaps_or_repeats(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    body = {"messages": [{"content": f"common word number{i}"} for i in range(30)]}
    response = await client.post(f"/chat/sessions/{session['_id']}/messages/batch", json=body, headers=user.headers)
    assert response.status_code == 201
    for i in range(30, 35):
        await post_message(client, user, session["_id"], f"common word number{i}")
    hits = await _search(client, user, "common", limit=4)
    seqs = [hit["message"]["seq"] for hit in hits]
    assert seqs == list(range(35, 0, -1))


async def test_a_page_stops_at_its_scan_budget_and_the_cursor_goes_on(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two words each in many messages, together in one old one: a request reads at most
    SCAN_BUDGET candidates, so pages may come back short, never wrong."""
    monkeypatch.setattr(search, "SCAN_BUDGET", 5)
    user = await make_user(client)
    session = await make_session(client, user)
    texts = ["alpha beta", *(f"alpha filler {i}" for i in range(10)), *(f"beta filler {i}" for i in range(10))]
    body = {"messages": [{"content": text} for text in texts]}
    await client.post(f"/chat/sessions/{session['_id']}/messages/batch", json=body, headers=user.headers)
    await wait_for_search_index(client)
    first = (await client.get("/chat/search", params={"q": "alpha beta"}, headers=user.headers)).json()
    assert first["items"] == [] and first["next_cursor"]
    assert _contents(await _search(client, user, "alpha beta")) == ["alpha beta"]


async def test_the_rarest_word_drives_the_read(client: AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (issue 18): a common word with a rare one read the index by the longer word
    (here the common one), page after page of candidates; the rare word's few hits now come
    on the first page, whatever the order or length of the words."""
    monkeypatch.setattr(search, "SCAN_BUDGET", 5)
    user = await make_user(client)
    session = await make_session(client, user)
    texts = ["needle in the haystack", *(f"haystack straw {i}" for i in range(20))]
    body = {"messages": [{"content": text} for text in texts]}
    await client.post(f"/chat/sessions/{session['_id']}/messages/batch", json=body, headers=user.headers)
    await wait_for_search_index(client)
    for q in ("haystack needle", "needle haystack", "haystack need"):
        page = (await client.get("/chat/search", params={"q": q}, headers=user.headers)).json()
        assert _contents(page["items"]) == ["needle in the haystack"], q


async def test_a_last_word_that_is_one_word_of_the_messages_still_finds_titles(client: AsyncClient) -> None:
    """The messages hold one word starting with "needl" (so it drives the read), a title
    another: both are found."""
    user = await make_user(client)
    session = await make_session(client, user, "Needlework")
    await post_message(client, user, session["_id"], "a needle")
    hits = await _search(client, user, "needl")
    assert sorted(hit["kind"] for hit in hits) == ["message", "title"]


async def test_bad_queries_and_cursors_are_clear_4xx(client: AsyncClient) -> None:
    user = await make_user(client)
    for q in ("", "  ", "?!", "a b c d e f g h i"):
        response = await client.get("/chat/search", params={"q": q}, headers=user.headers)
        assert response.status_code == 422, q
    session = await make_session(client, user)
    for i in range(3):
        await post_message(client, user, session["_id"], f"alpha {i}")
    page = (await client.get("/chat/search", params={"q": "alpha", "limit": 1}, headers=user.headers)).json()
    other = await client.get("/chat/search", params={"q": "beta", "cursor": page["next_cursor"]}, headers=user.headers)
    assert other.status_code == 400
    forged = await client.get("/chat/search", params={"q": "alpha", "cursor": "abc.def"}, headers=user.headers)
    assert forged.status_code == 400 and "abc" not in forged.text


async def test_explain_shows_index_reads_for_every_read_search_makes(db: AsyncDatabase[Document]) -> None:
    user_id, session_id = ObjectId(), ObjectId()
    now = datetime.now(UTC)
    await db[MESSAGE_TERMS].insert_one(
        {"user_id": user_id, "session_id": session_id, "terms": text_terms("blue train"), "created_at": now}
    )
    for window in (TimeSlice(now - timedelta(minutes=1), None), TimeSlice(None, now, ObjectId())):
        await assert_uses_index(db, MESSAGE_TERMS, {"user_id": user_id, "terms": "blue", **window.filter("created_at")})
        await assert_uses_index(
            db, SESSION_TITLES, {"user_id": user_id, "terms": "blue", **window.filter("created_at")}
        )
    await assert_uses_index(db, MESSAGE_TERMS, {"user_id": user_id, "terms": "train", "created_at": {"$in": [now]}})
    await db[TERM_COUNTS].insert_one({"user_id": user_id, "bucket": 1, "counts": {"train": 1}})
    await assert_uses_index(db, TERM_COUNTS, {"user_id": user_id, "bucket": {"$in": [1, 2]}})
    await assert_uses_index(db, TERM_COUNTS, {"user_id": user_id})
    for query in (
        {"user_id": user_id, "bucket": {"$in": [1, 2]}},
        {"user_id": user_id},
        {"user_id": user_id, "bucket": 1},
    ):
        await assert_uses_index(db, TERM_COUNT_DELTAS, query)
    await assert_uses_index(db, MESSAGES, {"_id": {"$in": [ObjectId(), ObjectId()]}})
    await assert_uses_index(db, SESSIONS, {"_id": {"$in": [session_id, ObjectId()]}})


async def test_messages_hold_what_the_user_wrote_and_nothing_of_search(
    client: AsyncClient, db: AsyncDatabase[Document]
) -> None:
    """Regression (issue 18): every message carried its search terms, written (and indexed,
    one entry per word) in its own transaction, and read back with it on every read."""
    user = await make_user(client)
    session = await make_session(client, user)
    posted = await post_message(client, user, session["_id"], "lean words only")
    (stored,) = await db[MESSAGES].find({"_id": ObjectId(posted["_id"])}).to_list()
    assert set(stored) == {"_id", "session_id", "user_id", "role", "content", "metadata", "seq", "created_at"}
    assert {index["name"] async for index in await db[MESSAGES].list_indexes()} == {"_id_", "session_seq_unique"}
    assert _contents(await _search(client, user, "lean")) == ["lean words only"]


def test_terms_hold_words_and_marked_prefixes() -> None:
    assert text_terms("Héllo, hello WORLD") == sorted(
        {"hello", "world", PREFIX_MARK + "h", PREFIX_MARK + "he", PREFIX_MARK + "hel"}
        | {PREFIX_MARK + "w", PREFIX_MARK + "wo", PREFIX_MARK + "wor"}
    )


def test_a_texts_terms_are_bounded_and_the_first_words_kept() -> None:
    words = [f"word{i:05d}" for i in range(6000)]
    terms = text_terms(" ".join(words) + " " + "x" * 500)
    assert len(terms) == MAX_TERMS_PER_TEXT
    assert "word00000" in terms and "word05999" not in terms
    assert max(len(term) for term in text_terms("y" * 10_000)) == 64


async def test_the_upgrade_takes_search_terms_off_older_messages(
    client: AsyncClient, db: AsyncDatabase[Document]
) -> None:
    """Also the upgrade from the build that kept title terms on the sessions, with their
    index: both go, so posts no longer pay for them."""
    user = await make_user(client)
    session = await make_session(client, user, "Old title")
    await post_message(client, user, session["_id"], "stored by an older build")
    await db[MESSAGES].update_many({}, {"$set": {"terms": ["stored", "older"]}})
    await db[MESSAGES].create_index(
        [("user_id", 1), ("terms", 1), ("created_at", -1), ("_id", -1)], name="user_terms_recent"
    )
    await db[SESSION_TITLES].delete_many({})
    await db[SESSIONS].update_many({}, {"$set": {"title_terms": ["old"]}})
    await db[SESSIONS].create_index([("user_id", 1), ("title_terms", 1)], name="user_title_terms_recent")
    await db[MIGRATIONS].delete_many({"name": {"$in": [TERMS_OFF_MESSAGES, LOOKUP_RECORDS]}})
    await asyncio.gather(upgrade_chat_documents(db), upgrade_chat_documents(db))  # two servers at once
    assert await db[MESSAGES].count_documents({"terms": {"$exists": True}}) == 0
    assert "user_terms_recent" not in {index["name"] async for index in await db[MESSAGES].list_indexes()}
    assert await db[SESSIONS].count_documents({"title_terms": {"$exists": True}}) == 0
    assert "user_title_terms_recent" not in {index["name"] async for index in await db[SESSIONS].list_indexes()}
    assert [hit["kind"] for hit in await _search(client, user, "old title")] == ["title"]
    assert _contents(await _search(client, user, "older build")) == ["stored by an older build"]


async def test_a_new_indexer_builds_the_index_of_stored_messages(
    app: FastAPI, client: AsyncClient, db: AsyncDatabase[Document], start_app: StartApp
) -> None:
    """Messages stored before this build (or with the index lost) are indexed from the stored
    messages by the first server that takes the indexer's lease, once each."""
    user = await make_user(client)
    session = await make_session(client, user)
    body = {"messages": [{"content": f"stored earlier number{i}"} for i in range(30)]}
    await client.post(f"/chat/sessions/{session['_id']}/messages/batch", json=body, headers=user.headers)
    await wait_for_search_index(client)
    app.state.search_indexer.stop.set()
    while app.state.search_indexer.holding:
        await asyncio.sleep(0.02)
    await db[MESSAGE_TERMS].delete_many({})
    await db[SEARCH_INDEXER].delete_many({})
    await db[SEARCH_INDEXER].insert_one(
        {"name": "messages", "holder": "a server that died", "expires_at": datetime.now(UTC)}
    )
    second = await start_app()
    await wait_for_search_index(second)
    assert len(await all_pages(second, user, "/chat/search", q="stored")) == 30
    assert await db[MESSAGE_TERMS].count_documents({}) == 30


def test_after_a_dense_stretch_the_next_page_starts_narrow() -> None:
    """A page that ended inside a dense stretch hands the next one the span it really covered,
    not the wide window that reached the stretch (which would be read again, whole)."""
    now = datetime.now(UTC)
    resume = search._Candidate(now - timedelta(seconds=3), ObjectId(), {}, False)
    assert search._next_width(timedelta(days=700), now, resume) == timedelta(seconds=3)
    assert search._next_width(timedelta(seconds=1), now, resume) == timedelta(seconds=1)
    assert search._next_width(timedelta(days=1), None, resume) == timedelta(days=1)


def _count_index_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The entries each read of a driving term's index range answers, from now on."""
    read: list[int] = []
    postings_in = search.repository.postings_in

    async def counted(*args: Any) -> list[Document]:
        found = await postings_in(*args)
        read.append(len(found))
        return found

    monkeypatch.setattr(search.repository, "postings_in", counted)
    return read


async def test_a_first_page_reads_the_index_from_the_newest_entry_of_its_word(
    client: AsyncClient, db: AsyncDatabase[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user back after a day: the page reads the minute before their newest message, not
    windows widening from now through the pause into a day of their history (issue 18: the
    benchmark's common word read 16 minutes of entries, ~960, for a page of 20). A title
    created after that message is still found: the first window is open towards the future."""
    user = await make_user(client)
    session = await make_session(client, user, "Old notes")
    newest = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    messages = [
        {"session_id": ObjectId(session["_id"]), "user_id": ObjectId(user.id), "role": "user", "metadata": {}}
        | {"content": f"common note {i}", "seq": 300 - i, "created_at": newest - timedelta(seconds=i)}
        for i in range(300)
    ]
    await db[MESSAGES].insert_many(messages)
    await make_session(client, user, "Common plans")
    await wait_for_search_index(client)
    read = _count_index_reads(monkeypatch)
    response = await client.get("/chat/search", params={"q": "common", "limit": 20}, headers=user.headers)
    hits = response.json()["items"]
    assert [hit["kind"] for hit in hits[:2]] == ["title", "message"]
    assert hits[0]["session"]["title"] == "Common plans" and hits[1]["snippet"]["text"] == "common note 0"
    assert len(hits) == 20 and read == [61], read  # one read: the newest message's minute
    assert len(_contents(await _search(client, user, "common", limit=100))) == 300  # none left at a window's edge


async def test_a_message_dated_in_the_future_does_not_move_where_a_first_page_starts(
    client: AsyncClient, db: AsyncDatabase[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import may date a message years ahead: windows walking back from there took a dozen
    reads to reach now, then one unbounded read of everything older."""
    user = await make_user(client)
    session = await make_session(client, user, "Notes")
    owner = {"session_id": ObjectId(session["_id"]), "user_id": ObjectId(user.id), "role": "user", "metadata": {}}
    day_ago = datetime.now(UTC) - timedelta(days=1)
    times = [datetime.now(UTC) + timedelta(days=3650)] + [day_ago - timedelta(seconds=i) for i in range(250)]
    await db[MESSAGES].insert_many(  # more than search.RARE_COUNT: read in windows
        [owner | {"content": f"common {i}", "seq": 251 - i, "created_at": at} for i, at in enumerate(times)]
    )
    await wait_for_search_index(client)
    read = _count_index_reads(monkeypatch)
    response = await client.get("/chat/search", params={"q": "common", "limit": 5}, headers=user.headers)
    assert [hit["snippet"]["text"] for hit in response.json()["items"]] == [f"common {i}" for i in range(5)]
    assert read[0] == 1 and len(read) <= 8, read  # from now: 1 min, 4, 16, ... to a day back
