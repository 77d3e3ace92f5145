"""Search at scale: one user with many messages, bulk-loaded as the API stores them (no search
terms) and indexed by the server's indexer behind the writes (its rate is reported); p50/p99
of GET /chat/search for a rare word, a common word (in every message), a prefix of it, two
common words, and a common word with a rare one (to its first hit); the post-to-searchable
lag while writers post; and the data directory's bytes per message (search index included)."""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from bson import ObjectId
from pymongo import MongoClient

from app.chat.terms import text_terms
from app.core.db import MESSAGES, SESSION_TITLES, SESSIONS, USERS
from bench import report

QUICK = os.environ.get("BENCH_QUICK") == "1"
MESSAGES_TOTAL = int(os.environ.get("BENCH_SEARCH_MESSAGES", 20_000 if QUICK else 100_000))
PER_SESSION = 1000
REQUESTS = 15 if QUICK else 40
RARE = "zyzzyva"
RARE_AT = (0.1, 0.5, 0.9)  # where in the history (0: newest) the rare word appears
VOCABULARY = [f"w{i:03d}" for i in range(500)]
LAG_WRITERS = 4
LAG_PROBES = 10 if QUICK else 50


def _load(db: Any, user_id: ObjectId) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC).replace(microsecond=0)
    rare = {int(MESSAGES_TOTAL * at) for at in RARE_AT}
    sessions = max(1, MESSAGES_TOTAL // PER_SESSION)
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
        for seq in range(1, min(PER_SESSION, MESSAGES_TOTAL) + 1):
            age = index * PER_SESSION + (PER_SESSION - seq)  # seconds before now; 0 is the newest
            words = ["common", *rng.sample(VOCABULARY, 12)] + ([RARE] if age in rare else [])
            content = " ".join(words)
            documents.append(
                {"session_id": session_id, "user_id": user_id, "role": "user", "content": content, "metadata": {}}
                | {"seq": seq, "created_at": now - timedelta(seconds=age)}
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


def measure(
    http: httpx.Client, uri: str, db_name: str, make_user: Callable[..., tuple[str, str]], data_dir: Path | None
) -> dict[str, Any]:
    user_id, token = make_user(http, f"search_{secrets.token_hex(3)}")
    headers = {"Authorization": f"Bearer {token}"}
    before = data_dir_bytes(data_dir, uri)
    report.progress(f"search: loading {MESSAGES_TOTAL} messages for one user")
    with MongoClient(uri, tz_aware=True) as client:
        _load(client[db_name], ObjectId(user_id))
    started = time.perf_counter()
    wait_for_index(http)
    indexing_seconds = time.perf_counter() - started
    report.progress(f"search: indexed in {indexing_seconds:.0f} s ({MESSAGES_TOTAL / indexing_seconds:.0f} messages/s)")
    cases = {
        "rare_word": (RARE, False),
        "common_word": ("common", False),
        "common_prefix": ("comm", False),
        "two_common_words": ("common w001", False),
        "common_and_rare_first_hit": (f"common {RARE}", True),
    }
    results: dict[str, Any] = {
        "messages": MESSAGES_TOTAL,
        "requests_per_case": REQUESTS,
        "indexed_per_second": round(MESSAGES_TOTAL / indexing_seconds),
    }
    after = data_dir_bytes(data_dir, uri)
    if before is not None and after is not None:
        results |= bytes_per_message(before, after, MESSAGES_TOTAL)
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
    results["post_to_searchable"] = _lag_under_load(http, make_user)
    return results


def data_dir_bytes(data_dir: Path | None, uri: str) -> dict[str, int] | None:
    """The data directory's size (None with an external database): all of it, and its tables
    once checkpointed (`fsync`). WiredTiger writes its journal in files of up to 10 MB and
    drops one only after a checkpoint has passed it, so the whole directory swings by tens of
    MB with when it is measured; the tables hold the data (the oplog's hour included)."""
    if data_dir is None or not data_dir.exists():
        return None
    with MongoClient(uri) as client:
        client.admin.command("fsync")
    sizes: dict[Path, int] = {}
    for path in data_dir.rglob("*"):
        with contextlib.suppress(FileNotFoundError):  # a journal file dropped meanwhile
            if path.is_file():
                sizes[path] = path.stat().st_size
    return {
        "directory": sum(sizes.values()),
        "tables": sum(size for path, size in sizes.items() if path.suffix == ".wt"),
    }


def bytes_per_message(before: dict[str, int], after: dict[str, int], messages: int) -> dict[str, int]:
    """Growth per message: `data_dir_bytes_per_message` (the whole directory) and
    `tables_bytes_per_message` (see data_dir_bytes)."""
    return {
        "data_dir_bytes_per_message": (after["directory"] - before["directory"]) // messages,
        "tables_bytes_per_message": (after["tables"] - before["tables"]) // messages,
    }


def wait_for_index(http: httpx.Client, timeout: float = 3600) -> None:
    """Until /readyz says the search indexer caught up after now."""
    since = datetime.now(UTC)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        caught_up_at = http.get("/readyz").json().get("search_index", {}).get("caught_up_at")
        if caught_up_at is not None and datetime.fromisoformat(caught_up_at) >= since:
            return
        time.sleep(0.2)
    raise TimeoutError("the search index did not catch up")


def _lag_under_load(http: httpx.Client, make_user: Callable[..., tuple[str, str]]) -> dict[str, Any]:
    """While LAG_WRITERS post 40-word messages (each to a session of its own), a probe posts a
    message with a word of its own and polls the search until it is found: post-to-searchable
    p50/p99 over LAG_PROBES."""
    stop = threading.Event()
    posted = [0]

    _, token = make_user(http, f"lag_{secrets.token_hex(3)}")  # one user: registrations are throttled
    headers = {"Authorization": f"Bearer {token}"}

    def write(index: int) -> None:
        rng = random.Random(index)
        with httpx.Client(base_url=http.base_url, timeout=30, headers=headers) as writer:
            session_id = writer.post("/chat/sessions", json={"title": "load"}).json()["_id"]
            while not stop.is_set():
                content = " ".join(rng.sample(VOCABULARY, 40))
                if writer.post(f"/chat/sessions/{session_id}/messages", json={"content": content}).status_code == 201:
                    posted[0] += 1

    session_id = http.post("/chat/sessions", json={"title": "probe"}, headers=headers).json()["_id"]
    writers = [threading.Thread(target=write, args=(i,)) for i in range(LAG_WRITERS)]
    for thread in writers:
        thread.start()
    lags: list[float] = []
    started = time.perf_counter()
    try:
        for probe in range(LAG_PROBES):
            word = f"probe{probe}x{secrets.token_hex(4)}"
            response = http.post(f"/chat/sessions/{session_id}/messages", json={"content": word}, headers=headers)
            response.raise_for_status()
            acknowledged = time.perf_counter()
            while not http.get("/chat/search", params={"q": word}, headers=headers).json()["items"]:
                time.sleep(0.02)
            lags.append((time.perf_counter() - acknowledged) * 1000)
    finally:
        stop.set()
        for thread in writers:
            thread.join(60)
    lags.sort()
    cell = {
        "p50_ms": round(statistics.median(lags), 1),
        "p99_ms": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))], 1),
        "writers": LAG_WRITERS,
        "posts_per_second": round(posted[0] / (time.perf_counter() - started), 1),
    }
    report.progress(
        f"search lag under load: p50 {cell['p50_ms']} ms, p99 {cell['p99_ms']} ms ({cell['posts_per_second']} posts/s)"
    )
    return cell
