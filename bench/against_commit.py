"""The same posts and data against other checkouts, on this machine, one after another:
`python -m bench.against_commit DIR...` (each DIR a checkout, e.g. `git worktree add
/tmp/before-search 880e767`; `.` for this one). Each gets a fresh embedded database and:

- send_message at concurrency 1, 16 and 64 (BENCH_SECONDS each, 5 by default), 64 sessions;
- 20,000 messages of 13 words from a 500-word vocabulary and `common`, posted in batches of
  100, and the data directory's growth per message once the search index (when the checkout
  has an indexer) has caught up.

For issue 18's goals against the commits before it and before search existed; not part of
`make bench` (it needs the other checkouts).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import load, search
from tests.server_process import free_port

MESSAGES = 20_000
BATCH = 100
SESSIONS = 64
VOCABULARY = [f"w{i:03d}" for i in range(500)]


def _caught_up(http: httpx.Client) -> None:
    """search.wait_for_index, when the checkout has an indexer (/readyz reports one)."""
    if isinstance(http.get("/readyz").json().get("search_index"), dict):
        search.wait_for_index(http, timeout=600)


def _started(checkout: Path, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The checkout's own chat-server (this environment's Python), once it answers /healthz."""
    port = free_port()
    env = {**os.environ, "DATA_DIR": str(work / "data"), "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"}
    env.pop("MONGODB_URI", None)
    with (work / "server.log").open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "app.cli"], cwd=checkout, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while server.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"the server of {checkout} did not start: see {work / 'server.log'}")


def _token(http: httpx.Client) -> str:
    credentials = {"username": f"against_{secrets.token_hex(3)}", "password": "bench-password-123"}
    http.post("/auths/register", json=credentials).raise_for_status()
    return str(http.post("/auths/login", data=credentials).json()["access_token"])


def _session_path(http: httpx.Client, headers: dict[str, str]) -> str:
    return f"/chat/sessions/{http.post('/chat/sessions', json={'title': 's'}, headers=headers).json()['_id']}"


def _posts(http: httpx.Client, token: str, seconds: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    paths = [_session_path(http, headers) + "/messages" for _ in range(SESSIONS)]
    targets = [{"path": path, "token": token} for path in paths]
    cells: dict[str, Any] = {}
    for concurrency in (1, 16, 64):
        cell = asyncio.run(load.run(str(http.base_url), "POST", targets, concurrency, seconds))
        cells[f"send_message_c{concurrency}"] = {k: cell[k] for k in ("rps", "p50_ms", "p99_ms", "errors")}
    return cells


def _bytes_per_message(http: httpx.Client, token: str, data_dir: Path) -> dict[str, int]:
    headers = {"Authorization": f"Bearer {token}"}
    uri = (data_dir / "mongodb.uri").read_text().strip()
    _caught_up(http)
    before = search.data_dir_bytes(data_dir, uri)
    path = _session_path(http, headers)
    rng = random.Random(1)
    for _ in range(MESSAGES // BATCH):
        batch = [{"content": " ".join(rng.sample(VOCABULARY, 13)) + " common"} for _ in range(BATCH)]
        http.post(f"{path}/messages/batch", json={"messages": batch}, headers=headers).raise_for_status()
    _caught_up(http)
    after = search.data_dir_bytes(data_dir, uri)
    assert before is not None and after is not None
    return search.bytes_per_message(before, after, MESSAGES)


def measure(checkout: Path, seconds: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="chat-bench-against-"))
    server, url = _started(checkout, work)
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            token = _token(http)
            result: dict[str, Any] = {"checkout": str(checkout), **_posts(http, token, seconds)}
            result |= _bytes_per_message(http, token, work / "data")
            return result
    finally:
        server.terminate()
        server.wait(60)


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    for checkout in sys.argv[1:]:
        print(json.dumps(measure(Path(checkout).resolve(), seconds)), flush=True)


if __name__ == "__main__":
    main()
