"""Search at scale: one user with many messages (bulk-loaded with the terms the API writes),
p50/p99 of GET /chat/search for a rare word, a common word (in every message), a prefix of it,
and a common word with a rare one (the worst case: the index is read by the common word, so
each page stops at the scan budget and the client follows the cursor)."""

from __future__ import annotations

import os
import random
import secrets
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from bson import ObjectId
from pymongo import MongoClient

from app.chat.terms import text_terms
from app.core.db import MESSAGES, SESSION_TITLES, SESSIONS, USERS
from bench import report

QUICK = os.environ.get("BENCH_QUICK") == "1"
MESSAGES_TOTAL = 20_000 if QUICK else 100_000
PER_SESSION = 1000
REQUESTS = 15 if QUICK else 40
RARE = "zyzzyva"
RARE_AT = (0.1, 0.5, 0.9)  # where in the history (0: newest) the rare word appears
VOCABULARY = [f"w{i:03d}" for i in range(500)]


def _load(db: Any, user_id: ObjectId) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC).replace(microsecond=0)
    rare = {int(MESSAGES_TOTAL * at) for at in RARE_AT}
    sessions = MESSAGES_TOTAL // PER_SESSION
    for index in range(sessions):
        newest = now - timedelta(seconds=index * PER_SESSION)
        title = f"bench chat {index}"
        session_id = (
            db[SESSIONS]
            .insert_one(
                {
                    "user_id": user_id,
                    "title": title,
                    "platform": "api",
                    "metadata": {},
                }
                | {"message_count": PER_SESSION, "last_message_at": newest, "created_at": newest, "updated_at": newest}
            )
            .inserted_id
        )
        db[SESSION_TITLES].insert_one(
            {"user_id": user_id, "session_id": session_id, "terms": text_terms(title), "created_at": newest}
        )
        documents = []
        for seq in range(1, PER_SESSION + 1):
            age = index * PER_SESSION + (PER_SESSION - seq)  # seconds before now; 0 is the newest
            words = ["common", *rng.sample(VOCABULARY, 12)] + ([RARE] if age in rare else [])
            content = " ".join(words)
            documents.append(
                {"session_id": session_id, "user_id": user_id, "role": "user", "content": content, "metadata": {}}
                | {"terms": text_terms(content), "seq": seq, "created_at": now - timedelta(seconds=age)}
            )
        db[MESSAGES].insert_many(documents)
    db[USERS].update_one({"_id": user_id}, {"$set": {"session_count": sessions}})


def _time(http: httpx.Client, headers: dict[str, str], q: str, follow: bool) -> tuple[float, int, int]:
    """(ms, hits, requests): one page, or with `follow` every page until the first hit."""
    started = time.perf_counter()
    params: dict[str, Any] = {"q": q, "limit": 20}
    hits = requests = 0
    while True:
        response = http.get("/chat/search", params=params, headers=headers)
        response.raise_for_status()
        page = response.json()
        requests += 1
        hits += len(page["items"])
        if not follow or hits or page["next_cursor"] is None:
            return (time.perf_counter() - started) * 1000, hits, requests
        params["cursor"] = page["next_cursor"]


def measure(http: httpx.Client, uri: str, db_name: str, make_user: Callable[..., tuple[str, str]]) -> dict[str, Any]:
    user_id, token = make_user(http, f"search_{secrets.token_hex(3)}")
    headers = {"Authorization": f"Bearer {token}"}
    report.progress(f"search: loading {MESSAGES_TOTAL} messages for one user")
    with MongoClient(uri, tz_aware=True) as client:
        _load(client[db_name], ObjectId(user_id))
    cases = {
        "rare_word": (RARE, False),
        "common_word": ("common", False),
        "common_prefix": ("comm", False),
        "two_common_words": ("common w001", False),
        "common_and_rare_first_hit": (f"common {RARE}", True),
    }
    results: dict[str, Any] = {"messages": MESSAGES_TOTAL, "requests_per_case": REQUESTS}
    for name, (q, follow) in cases.items():
        samples = [_time(http, headers, q, follow) for _ in range(REQUESTS)]
        times = sorted(ms for ms, _, _ in samples)
        cell = {
            "p50_ms": round(statistics.median(times), 1),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 1),
            "hits_first_page": samples[0][1],
            "requests": samples[0][2],
        }
        results[name] = cell
        report.progress(
            f"search {name}: p50 {cell['p50_ms']} ms, p99 {cell['p99_ms']} ms, {cell['requests']} request(s)"
        )
    return results
