"""The Conversations API (/v1) against our own /chat routes doing the same work: append one
item vs post one message, and list the newest 20 items vs the newest 20 messages, on the same
sessions; the goal is a /v1 : /chat throughput ratio of at least 0.9.

`python -m bench.openai_compat` runs this section alone against a server of its own.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench import report

QUICK = os.environ.get("BENCH_QUICK") == "1"
SECONDS = 2.0 if QUICK else 4.0
CONCURRENCY = (1, 16)
SESSIONS = 16
SEED_MESSAGES = 40
PAGE = 20
Load = Callable[..., dict[str, Any]]


def measure(http: httpx.Client, url: str, load: Load, make_user: Callable[..., Any]) -> dict[str, Any]:
    _, token = make_user(http, f"openai_{secrets.token_hex(3)}")
    headers = {"Authorization": f"Bearer {token}"}
    seed = {"messages": [{"content": f"seed {i}", "role": "user"} for i in range(SEED_MESSAGES)]}
    sessions = []
    for _ in range(SESSIONS):
        session_id = http.post("/chat/sessions", json={"title": "bench"}, headers=headers).json()["_id"]
        assert http.post(f"/chat/sessions/{session_id}/messages/batch", json=seed, headers=headers).status_code == 201
        sessions.append(session_id)
    chat = [f"/chat/sessions/{s}" for s in sessions]
    v1 = [f"/v1/conversations/conv_{s}" for s in sessions]
    pairs = {
        "append": (
            ("POST", [f"{p}/messages" for p in chat], {"content": "benchmark message", "role": "user"}),
            ("POST", [f"{p}/items" for p in v1], {"items": [{"role": "user", "content": "benchmark message"}]}),
        ),
        "list": (
            ("GET", [f"{p}/messages?limit={PAGE}" for p in chat], None),
            ("GET", [f"{p}/items?limit={PAGE}" for p in v1], None),
        ),
    }
    results: dict[str, Any] = {}
    for name, ((chat_method, chat_paths, chat_body), (v1_method, v1_paths, v1_body)) in pairs.items():
        results[name] = {}
        for concurrency in CONCURRENCY:
            ours = load(url, chat_method, _targets(chat_paths, token), concurrency, SECONDS, chat_body)
            theirs = load(url, v1_method, _targets(v1_paths, token), concurrency, SECONDS, v1_body)
            ratio = round(theirs["rps"] / ours["rps"], 2) if ours["rps"] else 0.0
            results[name][str(concurrency)] = {"chat": ours, "v1": theirs, "v1_chat_ratio": ratio}
            report.progress(
                f"openai {name} x{concurrency}: /v1 {theirs['rps']} rps (p50 {theirs['p50_ms']} ms, "
                f"errors {theirs['errors']}) vs /chat {ours['rps']} rps (p50 {ours['p50_ms']} ms): ratio {ratio}"
            )
    return results


def _targets(paths: list[str], token: str) -> list[dict[str, str]]:
    return [{"path": path, "token": token} for path in paths]


def main() -> None:
    from bench.__main__ import load, make_user
    from tests.server_process import ServerProcess

    work = Path(tempfile.mkdtemp(prefix="chat-bench-openai-"))
    server = ServerProcess(work / "data", env={"LOG_LEVEL": "WARNING"}).start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            measure(http, server.base_url, load, make_user)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
