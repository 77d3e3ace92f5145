"""The Chat Completions gateway's added latency: time to the first text chunk of a streamed
`/v1/chat/completions` through our server (recorded into a named session) minus the same
request to the fake upstream directly, both with the openai SDK over a kept-alive connection
(goal: p50 added <= 15 ms). Like the reply section's first token, each turn starts once the
search index has caught up with the last one (a reader's pause between turns): back to back,
the indexer writing the last turn's messages slowed about half the calls by ~10 ms.

`python -m bench.openai_gateway` runs this part alone (BENCH_QUICK=1: fewer samples).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from openai import AsyncOpenAI

from bench import report
from bench.assistant import caught_up
from tests.assistant.fake_upstream import FakeUpstream, Script
from tests.server_process import ServerProcess

SAMPLES = 10 if os.environ.get("BENCH_QUICK") == "1" else 50
PASSWORD = "bench-password-123"
MESSAGES: Any = [{"role": "user", "content": "hi"}]


async def _first_text(client: AsyncOpenAI, **options: Any) -> float:
    """Seconds to the first text chunk; the stream is read to its end, as a client does (one
    that leaves early cancels the recorded reply, and its next call could find the session's
    reply still ending: a 409)."""
    started = time.perf_counter()
    first: float | None = None
    stream = await client.chat.completions.create(model="fake-small", messages=MESSAGES, stream=True, **options)
    async with stream:
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError("no text")
    return first


async def _token(base_url: str) -> str:
    name = f"gateway_{secrets.token_hex(3)}"
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        await http.post("/auths/register", json={"username": name, "password": PASSWORD})
        response = await http.post("/auths/login", data={"username": name, "password": PASSWORD})
        token: str = response.json()["access_token"]
        return token


async def _measure(server_url: str, upstream: FakeUpstream) -> dict[str, Any]:
    upstream.default = Script(pieces=["a", "b"])
    token = await _token(server_url)
    through_ms, direct_ms = [], []
    async with (
        AsyncOpenAI(base_url=upstream.base_url, api_key="none", max_retries=0) as direct,
        AsyncOpenAI(base_url=f"{server_url}/v1", api_key=token, max_retries=0) as gateway,
        httpx.AsyncClient(base_url=server_url, timeout=60) as http,
    ):
        for _ in range(SAMPLES):
            direct_ms.append(await _first_text(direct) * 1000)
            through_ms.append(await _first_text(gateway, extra_headers={"X-Chat-Session": "bench"}) * 1000)
            await caught_up(http)  # as the reply section does: turns a reader's pause apart
    result = {
        "samples": SAMPLES,
        "through_p50_ms": round(statistics.median(through_ms), 2),
        "direct_p50_ms": round(statistics.median(direct_ms), 2),
        "goal_added_p50_ms": 15,
    }
    result["added_p50_ms"] = round(result["through_p50_ms"] - result["direct_p50_ms"], 2)
    report.progress(f"openai gateway first chunk: {result}")
    return result


def measure() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="chat-bench-gateway-"))
    with FakeUpstream() as upstream:
        env = {"LOG_LEVEL": "WARNING", "MODEL_BASE_URL": upstream.base_url, "MODEL_ALLOW_ANY": "true"}
        server = ServerProcess(work / "data", env=env).start()
        try:
            return asyncio.run(_measure(server.base_url, upstream))
        finally:
            server.stop()


if __name__ == "__main__":
    measure()
