"""What programs do: batch appends, keyed posts, get-or-create by name, and a whole read of a
long session through the API against the raw driver's single find on the same database."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
from bson import ObjectId
from pymongo import ASCENDING, AsyncMongoClient

from app.core.db import MESSAGES
from bench import report, search
from bench.load import Connection

QUICK = os.environ.get("BENCH_QUICK") == "1"
SECONDS = 2.0 if QUICK else 4.0
CONCURRENCY = (1, 16)
BATCH_SIZES = (1, 20, 100)
WRITE_SESSIONS = 16
FULL_READ_MESSAGES = 3000
FULL_READ_REPEATS = 5 if QUICK else 15
Load = Callable[..., dict[str, Any]]


def measure(
    http: httpx.Client, url: str, uri: str, db_name: str, load: Load, make_user: Callable[..., Any]
) -> dict[str, Any]:
    _, token = make_user(http, f"programs_{secrets.token_hex(3)}")
    headers = {"Authorization": f"Bearer {token}"}
    sessions = [
        http.post("/chat/sessions", json={"title": "bench"}, headers=headers).json()["_id"]
        for _ in range(WRITE_SESSIONS)
    ]
    operations: dict[str, Any] = {}

    def run(
        name: str, method: str, paths: list[str], body: Any = None, keyed: bool = False, per_request: int = 1
    ) -> None:
        targets = [{"path": path, "token": token} for path in paths]
        operations[name] = {"concurrency": {}}
        for concurrency in CONCURRENCY:
            cell = load(url, method, targets, concurrency, SECONDS, body, keyed)
            if per_request > 1:
                cell["messages_per_s"] = round(cell["rps"] * per_request, 1)
            operations[name]["concurrency"][str(concurrency)] = cell
            report.progress(
                f"{name} x{concurrency}: {cell['rps']} rps, p50 {cell['p50_ms']} ms, errors {cell['errors']}"
            )

    for size in BATCH_SIZES:
        body = {"messages": [{"content": "benchmark message", "metadata": {"i": i}} for i in range(size)]}
        run(
            f"send_batch_{size}",
            "POST",
            [f"/chat/sessions/{s}/messages/batch" for s in sessions],
            body,
            per_request=size,
        )
    run("send_message_keyed", "POST", [f"/chat/sessions/{s}/messages" for s in sessions], keyed=True)
    agent = {"name": "bench-agent", "platform": "cli", "metadata": {"session_origin": "cli"}}
    assert http.post("/chat/sessions", json=agent, headers=headers).status_code == 201
    run("get_or_create_existing", "POST", ["/chat/sessions"], agent)
    return {"operations": operations, "full_read": asyncio.run(full_read(http, url, uri, db_name, headers, token))}


async def full_read(
    http: httpx.Client, url: str, uri: str, db_name: str, headers: dict[str, str], token: str
) -> dict[str, Any]:
    """Every message of a 3,000-message session: forward pages of 1,000 through the API, and
    the old way (backward pages of 200), each against one find through the driver."""
    report.progress(f"full read: appending {FULL_READ_MESSAGES} messages in batches of 100")
    session_id = http.post("/chat/sessions", json={"title": "long"}, headers=headers).json()["_id"]
    batch = {"messages": [{"content": f"message {i} " + "lorem ipsum " * 8} for i in range(100)]}
    for _ in range(FULL_READ_MESSAGES // 100):
        assert http.post(f"/chat/sessions/{session_id}/messages/batch", json=batch, headers=headers).status_code == 201
    search.wait_for_index(http)  # the indexer behind the appends would slow the first reads
    path = f"/chat/sessions/{session_id}/messages"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    connection = await Connection.open(url)
    try:

        async def raw() -> int:
            cursor = client[db_name][MESSAGES].find({"session_id": ObjectId(session_id)}).sort("seq", ASCENDING)
            return len(await cursor.to_list(None))

        async def api(params: dict[str, Any]) -> int:
            count, query = 0, dict(params)
            while True:
                page = await _get_json(connection, f"{path}?{urlencode(query)}", token)
                count += len(page["items"])
                if page["next_cursor"] is None:
                    return count
                query = {"limit": params["limit"], "cursor": page["next_cursor"]}

        timings = await _medians_ms(
            {
                "raw_find_ms": raw,
                "api_forward_1000_ms": lambda: api({"after_seq": 0, "limit": 1000}),
                "api_backward_200_ms": lambda: api({"limit": 200}),
            }
        )
    finally:
        await connection.close()
        await client.close()
    result = {"messages": FULL_READ_MESSAGES, "repeats": FULL_READ_REPEATS, **timings}
    result["api_forward_raw_ratio"] = round(timings["api_forward_1000_ms"] / timings["raw_find_ms"], 2)
    result["api_backward_raw_ratio"] = round(timings["api_backward_200_ms"] / timings["raw_find_ms"], 2)
    report.progress(f"full read of {FULL_READ_MESSAGES}: {json.dumps(result)}")
    return result


async def _get_json(connection: Connection, path: str, token: str) -> Any:
    status, body = await connection.request_body("GET", path, {"Authorization": f"Bearer {token}"}, b"")
    assert status == 200, (status, body[:200])
    return json.loads(body)


async def _medians_ms(reads: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Each read's median, the reads taking turns: a machine slower for a while slows all alike."""
    counts: set[int] = set()
    times: dict[str, list[float]] = {name: [] for name in reads}
    for _ in range(FULL_READ_REPEATS):
        for name, read in reads.items():
            started = time.perf_counter()
            counts.add(await read())
            times[name].append(time.perf_counter() - started)
    assert counts == {FULL_READ_MESSAGES}, counts
    return {name: round(statistics.median(values) * 1000, 2) for name, values in times.items()}
