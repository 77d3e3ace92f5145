"""The load generator, run as its own process: N concurrent clients hit one endpoint for a
fixed time; prints {"rps", "p50_ms", "p99_ms", "requests", "errors"} as JSON."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
from typing import Any
from urllib.parse import urlsplit


def summarize(latencies: list[float], errors: int, seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0
    return {
        "rps": round(len(ordered) / seconds, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 2) if ordered else None,
        "p99_ms": round(p99 * 1000, 2) if ordered else None,
        "requests": len(ordered),
        "errors": errors,
    }


class Connection:
    """A minimal HTTP/1.1 keep-alive client: a generic client (httpx) spent more CPU per
    request than the server it measured (at 64 connections it capped /healthz at ~75 rps
    where this reaches ~1,900), and the two share the machine's cores."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        return cls(reader, writer)

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
        status, _ = await self.request_body(method, path, headers, body)
        return status

    async def request_body(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        lines = [f"{method} {path} HTTP/1.1", "Host: bench", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


DEFAULT_BODY = {"content": "benchmark message", "role": "user"}


async def run(
    url: str,
    method: str,
    targets: list[dict[str, str]],
    concurrency: int,
    seconds: float,
    body_json: Any = None,
    keyed: bool = False,
) -> dict[str, Any]:
    """`keyed`: each request sends a new Idempotency-Key, as a careful client does."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    body = json.dumps(body_json or DEFAULT_BODY).encode() if method in ("POST", "PATCH") else b""
    keys = itertools.count()

    async def worker(index: int) -> None:
        nonlocal errors
        target = targets[index % len(targets)]
        headers = {"Content-Type": "application/json"}
        if target.get("token"):
            headers["Authorization"] = f"Bearer {target['token']}"
        connection = await Connection.open(url)
        try:
            while time.perf_counter() < deadline:
                if keyed:
                    headers["Idempotency-Key"] = f"bench-{index}-{next(keys)}-{time.time_ns()}"
                started = time.perf_counter()
                status = await connection.request(method, target["path"], headers, body)
                if status >= 400:
                    errors += 1
                else:
                    latencies.append(time.perf_counter() - started)
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return summarize(latencies, errors, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--targets", required=True, help="JSON list of {path, token}")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--body", help="JSON body for POST and PATCH (default: one message)")
    parser.add_argument("--keyed", action="store_true", help="a new Idempotency-Key per request")
    args = parser.parse_args()
    body = json.loads(args.body) if args.body else None
    targets = json.loads(args.targets)
    result = asyncio.run(run(args.url, args.method, targets, args.concurrency, args.seconds, body, args.keyed))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
