"""Search over long messages (issue 18): a search reads postings first, then only the page's
messages, so four concurrent searches of a user with long messages neither make another
user's requests fail nor grow the server's memory by more than the pages they answer."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.bounds import measured
from tests.factories import register_over_http, wait_for_search_index_over_http
from tests.server_process import ServerProcess
from tests.stress import scaled

MESSAGES = scaled(64, 400)
MESSAGE_CHARS = 30_000
BATCH = 32  # ~960 KB a batch, under the server's body limit below
SEARCHERS = 4
LOAD_SECONDS = scaled(6, 20)
QUERIES = ("a", "common", "lo")  # a one-letter prefix, a word every message holds, a prefix
DB_TIMEOUT_SECONDS = 2.5  # the server's default DB_TIMEOUT_SECONDS
SLACK_SECONDS = 2.5  # a loaded shared machine: the HTTP round trip and event loop on top
RSS_GROWTH_BOUND_MB = 120  # 4 pages of 200 messages of 30 KB are ~24 MB of text


def long_message(rng: random.Random) -> str:
    words = [f"{syllable}{n}" for syllable in ("ka", "lo", "mi", "ren", "tas", "vu", "an") for n in range(300)]
    text = "common a "
    while len(text) < MESSAGE_CHARS - 20:
        text += rng.choice(words) + " "
    return text[: MESSAGE_CHARS - 1]


@pytest.mark.stress
def test_concurrent_searches_over_long_messages_never_fail_another_users_requests(tmp_path: Path) -> None:
    """Regression: a snippet folded every word of each 30 KB message on the event loop
    (~15 ms each, 200 a page), so four such searches held the loop past the DB timeout and
    another user's posts answered 503."""
    server = ServerProcess(tmp_path / "data", env={"MAX_BODY_BYTES": str(2 * 1024 * 1024)}).start()
    rng = random.Random(18)
    try:
        searcher = register_over_http(server.base_url, "longsearcher")
        other = register_over_http(server.base_url, "otheruser")
        with httpx.Client(base_url=server.base_url, headers=searcher, timeout=120) as http:
            session_id = http.post("/chat/sessions", json={"title": "long"}).json()["_id"]
            for start in range(0, MESSAGES, BATCH):
                body = {"messages": [{"content": long_message(rng)} for _ in range(min(BATCH, MESSAGES - start))]}
                response = http.post(f"/chat/sessions/{session_id}/messages/batch", json=body)
                assert response.status_code == 201, response.text
        wait_for_search_index_over_http(server.base_url, timeout=300)
        with httpx.Client(base_url=server.base_url, headers=other, timeout=60) as http:
            other_session = http.post("/chat/sessions", json={"title": "plain"}).json()["_id"]

        stop = time.monotonic() + LOAD_SECONDS
        searches: list[tuple[int, float, int]] = []  # status, seconds, hits
        others: list[int] = []

        def search(index: int) -> None:
            with httpx.Client(base_url=server.base_url, headers=searcher, timeout=60) as http:
                turn = index
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    response = http.get("/chat/search", params={"q": QUERIES[turn % len(QUERIES)], "limit": 200})
                    hits = len(response.json().get("items", [])) if response.status_code == 200 else 0
                    searches.append((response.status_code, time.perf_counter() - started, hits))
                    turn += 1

        def post_and_read() -> None:
            with httpx.Client(base_url=server.base_url, headers=other, timeout=60) as http:
                while time.monotonic() < stop:
                    posted = http.post(f"/chat/sessions/{other_session}/messages", json={"content": "plain hello"})
                    read = http.get(f"/chat/sessions/{other_session}/messages", params={"limit": 50})
                    others.extend([posted.status_code, read.status_code])

        threads = [threading.Thread(target=search, args=(i,)) for i in range(SEARCHERS)]
        threads.append(threading.Thread(target=post_and_read))
        assert server.process is not None and server.database_pid is not None
        with measured(server.process.pid) as cost, measured(server.database_pid) as database_cost:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        assert others and set(others) <= {200, 201}, others
        assert searches and {status for status, _, _ in searches} == {200}, searches
        slowest = max(seconds for _, seconds, _ in searches)
        assert slowest < DB_TIMEOUT_SECONDS + SLACK_SECONDS, sorted(seconds for _, seconds, _ in searches)
        assert max(hits for _, _, hits in searches) >= min(200, MESSAGES)  # the title "long" matches "lo" too
        assert cost.growth_mb < RSS_GROWTH_BOUND_MB, cost.growth_mb
        assert database_cost.growth_mb < RSS_GROWTH_BOUND_MB, database_cost.growth_mb
    finally:
        server.stop()
