"""The per-user term counts that pick a search's rarest word: the indexer writes what a batch
adds as deltas and folds them into the counts once for many batches (a bucket of a large
vocabulary is not rewritten per batch), and search adds the deltas not folded in yet."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from bson import ObjectId
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.chat import search_index, search_repository
from app.chat.terms import text_terms
from app.chat.upgrade import DATED_TERM_COUNTS, upgrade_chat_documents
from app.core.db import MIGRATIONS, SESSIONS, TERM_COUNT_DELTAS, TERM_COUNTS, Document
from tests.factories import make_session, make_user, post_message, wait_for_search_index


async def test_search_counts_what_is_not_merged_yet(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    # The app's indexer reads the deltas a former holder left when it takes the lease: after
    # that it merges only its own, not this test's.
    await wait_for_search_index(client)
    user_id = ObjectId()
    times = [datetime(2026, 1, day, tzinfo=UTC) for day in (1, 2, 3)]
    texts = ("red fox", "red hen", "redwood")
    entries = [
        {"user_id": user_id, "terms": text_terms(text), "created_at": at} for text, at in zip(texts, times, strict=True)
    ]
    await search_index.add_count_deltas(db, search_index.count_deltas(entries[:2]))
    counted = await search_repository.term_counts(db, user_id, ["red", "fox", "redwood"])
    assert counted.counts == {"red": 2, "fox": 1}
    await search_index.add_count_deltas(db, search_index.count_deltas(entries[2:]))
    buckets = list({search_index.term_bucket(term) for term in ("red", "fox", "hen", "redwood")})
    await search_index.merge_count_deltas(db, user_id, buckets, None)
    await search_index.add_count_deltas(db, search_index.count_deltas(entries[:1]))  # after the merge
    counted = await search_repository.term_counts(db, user_id, ["red", "fox", "hen", "redwood"])
    assert counted.counts == {"red": 3, "fox": 2, "hen": 1, "redwood": 1}
    assert sorted(await search_repository.words_starting(db, user_id, "red", 10)) == ["red", "redwood"]
    # No entry of a term is newer than its bucket's `newest` (where search starts reading it).
    for term, newest_entry in (("fox", times[0]), ("hen", times[1]), ("redwood", times[2])):
        assert newest_entry <= counted.newest_holding(term) <= times[2]  # type: ignore[operator]


async def test_a_bucket_counted_before_newest_was_kept_does_not_tell_it(db: AsyncDatabase[Document]) -> None:
    user_id = ObjectId()
    bucket = search_index.term_bucket("fox")
    await db[TERM_COUNTS].insert_one({"user_id": user_id, "bucket": bucket, "counts": {"fox": 5}})
    entries = [{"user_id": user_id, "terms": ["fox"], "created_at": datetime(2026, 1, 1, tzinfo=UTC)}]
    await search_index.add_count_deltas(db, search_index.count_deltas(entries))
    assert (await search_repository.term_counts(db, user_id, ["fox"])).newest_holding("fox") is None
    await search_index.merge_count_deltas(db, user_id, [bucket], None)
    counted = await search_repository.term_counts(db, user_id, ["fox"])
    assert counted.counts == {"fox": 6} and counted.newest_holding("fox") is None


async def test_the_indexer_folds_the_deltas_into_exact_counts(client: AsyncClient, db: AsyncDatabase[Document]) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    texts = [f"shared word{i % 3} unique{i}" for i in range(12)]
    for text in texts:
        await post_message(client, user, session["_id"], text)
    await wait_for_search_index(client)
    async with asyncio.timeout(30):  # folded in once the indexer is idle
        while await db[TERM_COUNT_DELTAS].count_documents({"user_id": ObjectId(user.id)}):
            await asyncio.sleep(0.1)
    expected = Counter(term for text in texts for term in text_terms(text))
    stored: Counter[str] = Counter()
    async for bucket in db[TERM_COUNTS].find({"user_id": ObjectId(user.id)}):
        stored.update(bucket["counts"])
    assert stored == expected


async def test_the_upgrade_dates_counts_kept_before_they_told_their_newest_entry(db: AsyncDatabase[Document]) -> None:
    user_id, last_active = ObjectId(), datetime(2026, 2, 1, tzinfo=UTC)
    bucket = search_index.term_bucket("fox")
    await db[SESSIONS].insert_many(
        [{"user_id": user_id, "updated_at": at, "title": "t"} for at in (last_active - timedelta(days=1), last_active)]
    )
    await db[TERM_COUNTS].insert_one({"user_id": user_id, "bucket": bucket, "counts": {"fox": 5}})
    await db[TERM_COUNT_DELTAS].insert_one({"user_id": user_id, "bucket": bucket, "counts": {"fox": 1}})
    await db[MIGRATIONS].delete_many({"name": DATED_TERM_COUNTS})
    await upgrade_chat_documents(db)
    counted = await search_repository.term_counts(db, user_id, ["fox"])
    assert counted.counts == {"fox": 6} and counted.newest_holding("fox") == last_active
    await search_index.merge_count_deltas(db, user_id, [bucket], None)
    assert (await search_repository.term_counts(db, user_id, ["fox"])).newest_holding("fox") == last_active
