"""The agent doors: the client package's append throughput against raw HTTP doing the same keyed
posts (the client should add no hidden cost: ratio >= 0.8), and what a LangChain turn costs
(read what is new, append the turn) with 10 and with 3,000 messages already in the session."""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from chat_client import Client
from chat_client.langchain import ChatServerMessageHistory
from langchain_core.messages import AIMessage, HumanMessage

from bench import report

QUICK = os.environ.get("BENCH_QUICK") == "1"
SECONDS = 2.0 if QUICK else 5.0
ROUNDS = 2 if QUICK else 3  # raw and client alternate, so drift on the machine hits both alike
CONCURRENCY = (1, 8)
HISTORY_SIZES = (10, 3000)
TURNS = 10 if QUICK else 30
BODY = "benchmark message"


def measure(http: httpx.Client, url: str, make_user: Callable[..., tuple[str, str]]) -> dict[str, Any]:
    _, token = make_user(http, f"integrations_{uuid.uuid4().hex[:6]}")
    headers = {"Authorization": f"Bearer {token}"}
    counter = RequestCounter()
    counted = httpx.Client(event_hooks={"response": [counter]}, timeout=30)
    with Client(url, api_key=token, http_client=counted) as chat:  # the same bearer as the raw posts
        throughput = {str(c): append_throughput(chat, url, headers, c) for c in CONCURRENCY}
        langchain = {str(size): langchain_turns(chat, counter, size) for size in HISTORY_SIZES}
    counted.close()
    return {"client_append": throughput, "langchain_turn": langchain}


def append_throughput(chat: Client, url: str, headers: dict[str, str], concurrency: int) -> dict[str, Any]:
    session = chat.create_session("bench client")
    path = f"{url}/chat/sessions/{session.id}/messages"
    raw_http = httpx.Client(timeout=30)

    def raw() -> None:
        response = raw_http.post(
            path, json={"content": BODY}, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
        )
        assert response.status_code == 201, response.text

    def client() -> None:
        chat.append(session, BODY)

    totals = {"raw": 0, "client": 0}
    for _ in range(ROUNDS):
        for name, call in (("raw", raw), ("client", client)):
            totals[name] += _run_for(call, concurrency, SECONDS / ROUNDS)
    raw_http.close()
    cell = {name: round(count / SECONDS, 1) for name, count in totals.items()}
    cell["ratio"] = round(cell["client"] / cell["raw"], 2) if cell["raw"] else 0.0
    report.progress(f"client append x{concurrency}: {cell['client']} /s, raw {cell['raw']} /s, ratio {cell['ratio']}")
    return cell


def _run_for(call: Callable[[], None], concurrency: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds

    def worker() -> int:
        done = 0
        while time.monotonic() < deadline:
            call()
            done += 1
        return done

    with ThreadPoolExecutor(concurrency) as pool:
        return sum(pool.map(lambda _: worker(), range(concurrency)))


class RequestCounter:
    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0

    def __call__(self, response: httpx.Response) -> None:
        self.requests += 1
        self.bytes += int(response.headers.get("content-length", 0))


def langchain_turns(chat: Client, counter: RequestCounter, size: int) -> dict[str, Any]:
    name = f"bench-langchain-{size}-{uuid.uuid4().hex[:6]}"
    session = chat.session(name, platform="langchain")
    chat.append_many(
        session, [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(size)]
    )
    history = ChatServerMessageHistory(session_name=name, client=chat)
    started = time.perf_counter()
    assert len(history.messages) == size
    cold_ms = (time.perf_counter() - started) * 1000
    times, requests, read_bytes = [], [], []
    for turn in range(TURNS):
        before_requests, before_bytes = counter.requests, counter.bytes
        started = time.perf_counter()
        history.messages  # noqa: B018 - what an agent reads before each model call
        history.add_messages([HumanMessage(f"question {turn}"), AIMessage(f"answer {turn}")])
        times.append((time.perf_counter() - started) * 1000)
        requests.append(counter.requests - before_requests)
        read_bytes.append(counter.bytes - before_bytes)
    cell = {
        "messages_before": size,
        "first_read_ms": round(cold_ms, 1),
        "turn_p50_ms": round(statistics.median(times), 1),
        "turn_max_ms": round(max(times), 1),
        "requests_per_turn": statistics.median(requests),
        "bytes_per_turn": statistics.median(read_bytes),
        "turns": TURNS,
    }
    report.progress(
        f"langchain turn with {size} messages: p50 {cell['turn_p50_ms']} ms, {cell['requests_per_turn']} requests, "
        f"{cell['bytes_per_turn']} bytes (first read {cell['first_read_ms']} ms)"
    )
    return cell
