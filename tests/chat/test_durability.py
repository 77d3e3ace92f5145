"""A real server process on a real data directory: crashes and restarts lose nothing that was
acknowledged, and counters always agree with the stored messages."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from tests.factories import DEFAULT_PASSWORD, register_over_http
from tests.server_process import ServerProcess
from tests.stress import scaled

WRITER_THREADS = 6
SESSIONS = 3
ACKNOWLEDGED_BEFORE_KILL = scaled(150, 1000)


def _stored_messages(base_url: str, headers: dict[str, str], session_id: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    params: dict[str, str | int] = {"limit": 200}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        while True:
            page = http.get(f"/chat/sessions/{session_id}/messages", params=params).json()
            items = page["items"] + items
            if page["next_cursor"] is None:
                return items
            params["cursor"] = page["next_cursor"]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.mark.stress
def test_sigkill_under_write_load_loses_no_acknowledged_message(data_dir: Path) -> None:
    server = ServerProcess(data_dir).start()
    try:
        headers = register_over_http(server.base_url, "crashtest")
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
            session_ids = [http.post("/chat/sessions", json={"title": f"s{i}"}).json()["_id"] for i in range(SESSIONS)]

        acknowledged: dict[str, set[str]] = defaultdict(set)
        lock = threading.Lock()
        stop = threading.Event()

        def write(worker: int) -> None:
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as http:
                n = 0
                while not stop.is_set():
                    session_id = session_ids[(worker + n) % SESSIONS]
                    n += 1
                    try:
                        response = http.post(
                            f"/chat/sessions/{session_id}/messages", json={"content": f"w{worker}-{n}"}
                        )
                    except httpx.TransportError:
                        return  # the server died mid-request: not acknowledged
                    if response.status_code == 201:
                        with lock:
                            acknowledged[session_id].add(response.json()["_id"])

        writers = [threading.Thread(target=write, args=(w,)) for w in range(WRITER_THREADS)]
        for thread in writers:
            thread.start()
        deadline = time.monotonic() + 120
        while sum(map(len, acknowledged.values())) < ACKNOWLEDGED_BEFORE_KILL and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()  # SIGKILL the app and its embedded database together, mid-load
        stop.set()
        for thread in writers:
            thread.join(30)
    finally:
        server.kill()

    total_acknowledged = sum(map(len, acknowledged.values()))
    assert total_acknowledged >= 150

    restarted = ServerProcess(data_dir).start()
    try:
        headers = register_over_http(restarted.base_url, "after_crash") | headers  # old token still valid
        with httpx.Client(base_url=restarted.base_url, headers=headers, timeout=30) as http:
            for session_id in session_ids:
                stored = _stored_messages(restarted.base_url, headers, session_id)
                stored_ids = {str(m["_id"]) for m in stored}
                missing = acknowledged[session_id] - stored_ids
                assert not missing, f"{len(missing)} acknowledged messages lost in {session_id}"
                session = http.get(f"/chat/sessions/{session_id}").json()
                assert session["message_count"] == len(stored)
                assert [m["seq"] for m in stored] == list(range(1, len(stored) + 1))
    finally:
        restarted.stop()


def test_restart_keeps_users_sessions_messages_and_tokens(data_dir: Path) -> None:
    server = ServerProcess(data_dir).start()
    try:
        headers = register_over_http(server.base_url, "restarter")
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
            session = http.post("/chat/sessions", json={"title": "keep me"}).json()
            for i in range(5):
                assert (
                    http.post(f"/chat/sessions/{session['_id']}/messages", json={"content": f"m{i}"}).status_code == 201
                )
    finally:
        assert server.stop() in (0, -15)  # SIGTERM: a clean stop (uvicorn re-raises the signal it handled)
    assert not (data_dir / "mongodb.uri").exists(), "the stopped database's URI was left behind"

    restarted = ServerProcess(data_dir).start()
    try:
        with httpx.Client(base_url=restarted.base_url, headers=headers, timeout=30) as http:
            assert http.get("/auths/me").json()["username"] == "restarter"
            sessions = http.get("/chat/sessions").json()["items"]
            assert [(s["title"], s["message_count"]) for s in sessions] == [("keep me", 5)]
            messages = http.get(f"/chat/sessions/{session['_id']}/messages").json()["items"]
            assert [m["content"] for m in messages] == [f"m{i}" for i in range(5)]
            login = http.post("/auths/login", data={"username": "restarter", "password": DEFAULT_PASSWORD})
            assert login.status_code == 200
    finally:
        restarted.stop()
