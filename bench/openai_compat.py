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

from bench import report, search

QUICK = os.environ.get("BENCH_QUICK") == "1"
SECONDS = 1.0 if QUICK else 2.0
ROUNDS = 5
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
    for name, (chat_plan, v1_plan) in pairs.items():
        results[name] = {}
        for concurrency in CONCURRENCY:
            cell = _alternated(
                lambda plan, c=concurrency: _settled(
                    http, lambda: load(url, plan[0], _targets(plan[1], token), c, SECONDS, plan[2])
                ),
                chat_plan,
                v1_plan,
            )
            results[name][str(concurrency)] = cell
            ours, theirs = cell["chat"], cell["v1"]
            report.progress(
                f"openai {name} x{concurrency}: /v1 {theirs['rps']} rps (p50 {theirs['p50_ms']} ms, "
                f"errors {theirs['errors']}) vs /chat {ours['rps']} rps (p50 {ours['p50_ms']} ms): "
                f"median ratio {cell['v1_chat_ratio']} of {cell['ratios']}"
            )
    return results


Plan = tuple[str, list[str], Any]  # method, paths, body


def _settled(http: httpx.Client, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`run` once the search indexer has caught up: the posts of the run before are indexed
    after it ends, and would otherwise slow this one (whichever door ran second)."""
    search.wait_for_index(http)
    return run()


def _alternated(run: Callable[[Plan], dict[str, Any]], chat_plan: Plan, v1_plan: Plan) -> dict[str, Any]:
    """ROUNDS pairs of runs, in alternating order, and the median of their ratios: on a shared
    machine the load drifts within seconds, and one pair alone measures the drift."""
    ratios, chats, v1s = [], [], []
    for round_number in range(ROUNDS):
        if round_number % 2:
            v1s.append(run(v1_plan))
            chats.append(run(chat_plan))
        else:
            chats.append(run(chat_plan))
            v1s.append(run(v1_plan))
        ratios.append(round(v1s[-1]["rps"] / chats[-1]["rps"], 2) if chats[-1]["rps"] else 0.0)
    middle = sorted(range(ROUNDS), key=lambda i: ratios[i])[ROUNDS // 2]
    return {"chat": chats[middle], "v1": v1s[middle], "v1_chat_ratio": ratios[middle], "ratios": ratios}


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
