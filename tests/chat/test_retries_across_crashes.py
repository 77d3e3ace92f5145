"""Real server processes: keyed retries across a SIGKILL store each message exactly once, and a
named get-or-create is one session however many servers race on it."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_JWT_SECRET
from tests.factories import register_over_http
from tests.server_process import ServerProcess
from tests.stress import scaled

KEYED_POSTS = scaled(60, 300)
CONCURRENT_CREATES = scaled(50, 200)


def _post_until_answered(http: httpx.Client, path: str, content: str, key: str) -> httpx.Response:
    """What a careful client does: retry with the same key while the first is in flight (409),
    and after a dropped connection (a pooled keep-alive connection the server closed as it was
    reused: seen once in CI)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            response = http.post(path, json={"content": content}, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            continue
        if response.status_code != 409 or time.monotonic() > deadline:
            return response
        time.sleep(min(float(response.headers.get("Retry-After", "1")), 2.0))


@pytest.mark.stress
def test_keyed_posts_interrupted_by_sigkill_are_stored_exactly_once_after_retries(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir).start()
    try:
        headers = register_over_http(server.base_url, "retrier")
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
            session_id = http.post("/chat/sessions", json={"name": "agent-run"}).json()["_id"]
        path = f"/chat/sessions/{session_id}/messages"
        keys = {f"message-{i}": f"key-{i}-{uuid.uuid4().hex}" for i in range(KEYED_POSTS)}
        acknowledged: list[str] = []
        started = threading.Barrier(KEYED_POSTS + 1)

        def post(content: str) -> None:
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as http:
                started.wait()
                try:
                    response = http.post(path, json={"content": content}, headers={"Idempotency-Key": keys[content]})
                except httpx.TransportError:
                    return
                if response.status_code == 201:
                    acknowledged.append(content)

        threads = [threading.Thread(target=post, args=(content,)) for content in keys]
        for thread in threads:
            thread.start()
        started.wait()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 10 and time.monotonic() < deadline:
            time.sleep(0.005)
        server.kill()  # SIGKILL the app and its embedded database together
        for thread in threads:
            thread.join(30)
    finally:
        server.kill()
    assert 0 < len(acknowledged) < KEYED_POSTS, f"the crash should interrupt the posts ({len(acknowledged)} done)"

    restarted = ServerProcess(data_dir).start()
    try:
        with (
            httpx.Client(base_url=restarted.base_url, headers=headers, timeout=30) as http,
            ThreadPoolExecutor(16) as pool,
        ):
            answers = list(pool.map(lambda c: _post_until_answered(http, path, c, keys[c]), keys))
            assert Counter(a.status_code for a in answers) == {201: KEYED_POSTS}
            replayed = {c for c, a in zip(keys, answers, strict=True) if a.headers.get("Idempotent-Replayed")}
            assert set(acknowledged) <= replayed, "an acknowledged post is replayed, not stored again"
            stored = http.get(path, params={"after_seq": 0, "limit": 1000}).json()["items"]
            assert Counter(m["content"] for m in stored) == Counter(list(keys)), "each message exactly once"
            assert [m["seq"] for m in stored] == list(range(1, KEYED_POSTS + 1))
            assert http.get(f"/chat/sessions/{session_id}").json()["message_count"] == KEYED_POSTS
    finally:
        restarted.stop()


def test_concurrent_get_or_create_across_two_server_processes(tmp_path: Path, mongodb_uri: str) -> None:
    env = {"MONGODB_URI": mongodb_uri, "MONGODB_DB": f"test_{uuid.uuid4().hex[:16]}", "JWT_SECRET": TEST_JWT_SECRET}
    servers = [ServerProcess(tmp_path / f"data{i}", env=env).start() for i in range(2)]
    try:
        headers = register_over_http(servers[0].base_url, "racer")
        body = {"name": "cli-40f58fa9", "platform": "cli", "metadata": {"session_origin": "cli"}}
        barrier = threading.Barrier(50)

        def create(index: int) -> httpx.Response:
            with httpx.Client(base_url=servers[index % 2].base_url, headers=headers, timeout=30) as http:
                barrier.wait()
                return http.post("/chat/sessions", json=body)

        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(create, range(CONCURRENT_CREATES)))
        assert Counter(a.status_code for a in answers) == {201: 1, 200: CONCURRENT_CREATES - 1}
        assert len({a.json()["_id"] for a in answers}) == 1
        with httpx.Client(base_url=servers[1].base_url, headers=headers, timeout=30) as http:
            assert len(http.get("/chat/sessions").json()["items"]) == 1
    finally:
        for server in servers:
            server.stop()
