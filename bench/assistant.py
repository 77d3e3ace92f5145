"""Model replies (app.assistant) against a fake OpenAI-compatible upstream on loopback:

- time to first token through the server (a streamed `POST .../messages?stream=true`, in one
  session that grows by each sample) minus the same request (the history the server sent) to
  the same upstream directly with the openai SDK over a kept-alive connection (goal: p50 <= 15 ms);
  each turn starts once the search indexer has caught up with the last one, as after a
  reader's pause (back to back, indexing the last turn slowed the next ask's transaction);
- database writes per reply, counted on a change stream (goal: <= 5 per second of generation
  plus the fixed ones);
- N concurrent generations for N users: tokens per second delivered, the server's RSS, and for
  WATCHERS of them a second client on the session's event stream: how long after the asker's
  own stream had the text each `message.updated` came (progress lag: the progress writes are
  at most every 250 ms, less often past 10 replies a process), and the final one after the
  asker had the whole text (end lag: the final write, the change stream, the fan-out).

`python -m bench.assistant` runs this part alone and merges it into bench/results.json under
"assistant"; BENCH_QUICK=1 (or `--small`) uses small sizes.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from openai import AsyncOpenAI
from pymongo import MongoClient

from app.assistant.upstream import NO_MESSAGES, sent_as_is
from app.core.db import GENERATIONS, MESSAGES
from bench import report
from bench.live import rss_kib
from tests.assistant.fake_upstream import FakeUpstream, Script
from tests.server_process import ServerProcess

PASSWORD = "bench-password-123"
SMALL = os.environ.get("BENCH_QUICK") == "1" or "--small" in sys.argv
TTFT_SAMPLES = 10 if SMALL else 50
CONCURRENT = 10 if SMALL else 50
WORDS = 50 if SMALL else 200
WRITES_PIECES, WRITES_DELAY = 40, 0.05  # a 2 s generation
WATCHERS = 10  # of the concurrent generations, this many are watched by a second client
DONE = -1  # in a (time, length) record: the reply has ended


async def _user(http: httpx.AsyncClient, name: str) -> dict[str, str]:
    await http.post("/auths/register", json={"username": name, "password": PASSWORD})
    token = (await http.post("/auths/login", data={"username": name, "password": PASSWORD})).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def _session(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
    session_id: str = (await http.post("/chat/sessions", json={"title": "bench"}, headers=headers)).json()["_id"]
    return session_id


async def _ask_streamed(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    session_id: str,
    text: str,
    grown: list[tuple[float, int]] | None = None,
) -> dict[str, Any]:
    """Stream one reply: seconds to the first delta, the final message; in `grown`, when given,
    the time (perf_counter) at which the streamed text reached each length, and its end."""
    started = time.perf_counter()
    first: float | None = None
    length = 0
    body = {"content": text, "reply": {"model": "fake-small"}}
    path = f"/chat/sessions/{session_id}/messages"
    async with http.stream("POST", path, params={"stream": "true"}, json=body, headers=headers) as response:
        if response.status_code != 201:
            detail = (await response.aread())[:300].decode(errors="replace")
            return {"first": None, "final": None, "status": response.status_code, "detail": detail}
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "reply.delta":
                first = time.perf_counter() - started if first is None else first
                length += len(json.loads(line[6:])["text"])
                if grown is not None:
                    grown.append((time.perf_counter(), length))
            elif line.startswith("data: ") and event == "reply.done":
                if grown is not None:
                    grown.append((time.perf_counter(), DONE))
                return {"first": first, "final": json.loads(line[6:]), "seconds": time.perf_counter() - started}
    raise RuntimeError("the reply stream ended without reply.done")


async def caught_up(http: httpx.AsyncClient) -> None:
    """Until the search indexer has caught up with what was written so far (/readyz): the next
    turn starts on a server that is done with the last one, as after a reader's pause."""
    since = datetime.now(UTC)
    while True:
        caught_up_at = (await http.get("/readyz")).json().get("search_index", {}).get("caught_up_at")
        if caught_up_at is not None and datetime.fromisoformat(caught_up_at) >= since:
            return
        await asyncio.sleep(0.05)


async def _direct_first_token(client: AsyncOpenAI, messages: list[dict[str, Any]]) -> float:
    """The same request as the server's (its messages, sent as the server sends them)."""
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model="fake-small",
        messages=NO_MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_body=sent_as_is(messages),
    )
    async with stream:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                return time.perf_counter() - started
    raise RuntimeError("no token")


def _ms(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000, 2)


async def _ttft(http: httpx.AsyncClient, upstream: FakeUpstream) -> dict[str, Any]:
    upstream.default = Script(pieces=["a", "b"])
    headers = await _user(http, f"ttft_{secrets.token_hex(3)}")
    session_id = await _session(http, headers)
    through, direct = [], []
    async with AsyncOpenAI(base_url=upstream.base_url, api_key="none", max_retries=0) as client:
        for _ in range(TTFT_SAMPLES):
            result = await _ask_streamed(http, headers, session_id, "hi")
            through.append(result["first"])
            direct.append(await _direct_first_token(client, upstream.last_messages()))
            await caught_up(http)
    return {
        "samples": TTFT_SAMPLES,
        "through_p50_ms": _ms(through, 0.5),
        "direct_p50_ms": _ms(direct, 0.5),
        "added_p50_ms": round(_ms(through, 0.5) - _ms(direct, 0.5), 2),
        "goal_added_p50_ms": 15,
    }


async def _writes(http: httpx.AsyncClient, upstream: FakeUpstream, uri: str, db_name: str) -> dict[str, Any]:
    upstream.default = Script(pieces=["w "] * WRITES_PIECES, delay=WRITES_DELAY)
    headers = await _user(http, f"writes_{secrets.token_hex(3)}")
    session_id = await _session(http, headers)
    events: list[dict[str, Any]] = []
    ready, stop = threading.Event(), threading.Event()

    def watch() -> None:
        with MongoClient(uri) as client:
            pipeline = [{"$match": {"ns.coll": {"$in": [MESSAGES, GENERATIONS]}}}]
            with client[db_name].watch(pipeline, max_await_time_ms=200) as stream:
                ready.set()
                while not stop.is_set():
                    change = stream.try_next()
                    if change is not None:
                        events.append({"coll": change["ns"]["coll"], "op": change["operationType"]})

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(10)
    result = await _ask_streamed(http, headers, session_id, "count")
    await asyncio.sleep(1.0)  # the change stream catches up
    stop.set()
    watcher.join(5)
    message_updates = sum(1 for e in events if e["coll"] == MESSAGES and e["op"] == "update")
    generation_writes = sum(1 for e in events if e["coll"] == GENERATIONS)
    inserts = sum(1 for e in events if e["coll"] == MESSAGES and e["op"] == "insert")
    seconds = result["final"]["metadata"]["duration_ms"] / 1000
    return {
        "generation_seconds": round(seconds, 2),
        "message_inserts": inserts,
        "message_updates": message_updates,
        "generation_record_writes": generation_writes,
        "updates_per_second": round(message_updates / seconds, 2) if seconds else None,
        "goal_updates_per_second": 5,
    }


async def _watch(
    http: httpx.AsyncClient, headers: dict[str, str], session_id: str, ready: asyncio.Event
) -> list[tuple[float, int]]:
    """A second client on the session's event stream: (perf_counter, the reply's stored length,
    or DONE once it has ended) for each update of the reply."""
    seen: list[tuple[float, int]] = []
    async with http.stream("GET", f"/chat/sessions/{session_id}/events", headers=headers) as response:
        event = None
        async for line in response.aiter_lines():
            ready.set()  # the stream's first line (a comment) is sent once it is subscribed
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "message.updated":
                message = json.loads(line[6:])
                ended = message.get("status") != "streaming"
                seen.append((time.perf_counter(), DONE if ended else len(message["content"])))
                if ended:
                    return seen
    return seen


def _watcher_lags(grown: list[tuple[float, int]], seen: list[tuple[float, int]]) -> tuple[list[float], list[float]]:
    """For each update the watcher saw: how long after the asker's stream reached that length
    it came (progress), and for the end, how long after the asker had the whole text (end)."""
    texts = [(t, n) for t, n in grown if n != DONE]
    progress, end = [], []
    for at, length in seen:
        if length == DONE and texts:
            end.append(at - texts[-1][0])
            continue
        reached = next((t for t, n in texts if n >= length), None)
        if reached is not None:
            progress.append(at - reached)
    return progress, end


async def _concurrent(http: httpx.AsyncClient, upstream: FakeUpstream, pid: int) -> dict[str, Any]:
    upstream.default = Script(echo=True, delay=0.01)
    users = [await _user(http, f"conc_{secrets.token_hex(3)}") for _ in range(CONCURRENT)]
    sessions = [await _session(http, headers) for headers in users]
    text = " ".join(f"t{i}" for i in range(WORDS))
    watched = range(0, CONCURRENT, CONCURRENT // WATCHERS)
    readies = [asyncio.Event() for _ in watched]
    watchers = [
        asyncio.create_task(_watch(http, users[i], sessions[i], ready))
        for i, ready in zip(watched, readies, strict=True)
    ]
    await asyncio.gather(*(ready.wait() for ready in readies))
    grown: dict[int, list[tuple[float, int]]] = {i: [] for i in watched}
    rss_before = rss_kib(pid)
    started = time.perf_counter()
    results = await asyncio.gather(
        *(_ask_streamed(http, h, s, text, grown.get(i)) for i, (h, s) in enumerate(zip(users, sessions, strict=True)))
    )
    wall = time.perf_counter() - started
    progress_lags, end_lags = [], []
    for i, watcher in zip(watched, watchers, strict=True):
        progress, end = _watcher_lags(grown[i], await asyncio.wait_for(watcher, 60))
        progress_lags += progress
        end_lags += end
    answered = [r for r in results if r["final"] is not None]
    exact = sum(1 for r in answered if r["final"]["status"] == "complete" and r["final"]["content"] == text)
    refused = sorted(f"{r['status']}: {r['detail']}" for r in results if r["final"] is None)
    return {
        "generations": CONCURRENT,
        "tokens_each": WORDS,
        "exact": exact,
        "refused": refused,
        "wall_seconds": round(wall, 2),
        "tokens_per_second": round(len(answered) * WORDS / wall, 1),
        "first_token_p99_ms": _ms([r["first"] for r in answered], 0.99),
        "watchers": len(watchers),
        "watcher_progress_lag_p50_ms": _ms(progress_lags, 0.5),
        "watcher_progress_lag_p99_ms": _ms(progress_lags, 0.99),
        "watcher_end_lag_p50_ms": _ms(end_lags, 0.5),
        "watcher_end_lag_p99_ms": _ms(end_lags, 0.99),
        "server_rss_mb_before": round(rss_before / 1024, 1),
        "server_rss_mb_after": round(rss_kib(pid) / 1024, 1),
    }


def measure() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="chat-bench-assistant-"))
    with FakeUpstream() as upstream:
        env = {
            "LOG_LEVEL": "WARNING",
            "MONGODB_DB": "chat",
            "MODEL_BASE_URL": upstream.base_url,
            "MODEL_ALLOW_ANY": "true",
            "MODEL_MAX_CONCURRENT": str(CONCURRENT),
            "REGISTER_MAX_PER_IP": str(CONCURRENT + 10),  # one user per generation, all from here
        }
        server = ServerProcess(work / "data", env=env).start()
        try:
            uri = (work / "data" / "mongodb.uri").read_text().strip()
            assert server.process is not None
            pid = server.process.pid

            async def run() -> dict[str, Any]:
                async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as http:
                    report.progress("assistant: time to first token, through us and direct")
                    ttft = await _ttft(http, upstream)
                    report.progress("assistant: database writes per reply")
                    writes = await _writes(http, upstream, uri, "chat")
                    report.progress(f"assistant: {CONCURRENT} concurrent generations")
                    concurrent = await _concurrent(http, upstream, pid)
                return {"small": SMALL, "first_token": ttft, "writes": writes, "concurrent": concurrent}

            return asyncio.run(run())
        finally:
            server.stop()


def main() -> None:
    results = measure()
    print(json.dumps(results, indent=2))
    path = report.RESULTS
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing["assistant"] = results
    path.write_text(json.dumps(existing, indent=2) + "\n")
    report.progress(f"wrote assistant to {path}")


if __name__ == "__main__":
    main()
