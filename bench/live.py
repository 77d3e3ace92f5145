"""Live updates under load: N concurrent user event streams (GET /chat/events) on one server
process while messages are posted; delivery latency from the post's acknowledgement to the
event's arrival on its owner's stream, and the server process's RSS.

Users and their sessions are written straight to the database and their access tokens
minted with the server's secret: registering 1,000 users would measure password hashing.
The stream client is raw asyncio (like bench.load.Connection): httpx spent more CPU per
stream than the server did. `python -m bench.live` runs this part alone and merges it into
bench/results.json under "live_updates".
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pymongo import AsyncMongoClient

from app.core.db import SESSIONS, USERS
from app.core.security import create_access_token
from bench import report
from bench.load import Connection

STREAM_COUNTS = (100, 1000)
POSTERS = 4
POST_SECONDS = 8.0
CONNECT_BATCH = 100
_CONTENT = re.compile(rb'"content":"lv(\d+)x"')


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Stream:
    """One GET /chat/events connection; records when each bench message arrives on it."""

    def __init__(self, received: dict[int, float]) -> None:
        self.received = received
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def run(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        self.writer = writer
        request = f"GET /chat/events HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n"
        writer.write(request.encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(head[:100])
        tail = b""
        while chunk := await reader.read(65536):
            now = time.monotonic()
            buffer = tail + chunk
            if not self.ready.is_set() and b"retry:" in buffer:
                self.ready.set()
            for match in _CONTENT.finditer(buffer):
                self.received.setdefault(int(match.group(1)), now)
            tail = buffer[-256:]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.task is not None:
            self.task.cancel()


async def _users(uri: str, db_name: str, secret: str, count: int) -> list[tuple[str, str]]:
    """(token, session id) for `count` new users with one session each."""
    created = datetime.now(UTC)
    tag = secrets.token_hex(3)
    async with AsyncMongoClient(uri) as client:
        db = client[db_name]
        users = [
            {
                "username": f"live{tag}_{i}",
                "username_key": f"live{tag}_{i}",
                "password_hash": "!",
                "role": "user",
                "disabled": False,
                "created_at": created,
                "last_login_at": None,
            }
            for i in range(count)
        ]
        user_ids = (await db[USERS].insert_many(users)).inserted_ids
        sessions = [
            {
                "user_id": user_id,
                "title": "live bench",
                "platform": "api",
                "metadata": {},
                "message_count": 0,
                "last_message_at": None,
                "created_at": created,
                "updated_at": created,
            }
            for user_id in user_ids
        ]
        session_ids = (await db[SESSIONS].insert_many(sessions)).inserted_ids
    return [(create_access_token(str(u), secret, 60).token, str(s)) for u, s in zip(user_ids, session_ids, strict=True)]


async def _cell(url: str, uri: str, db_name: str, secret: str, pid: int, streams: int) -> dict[str, Any]:
    users = await _users(uri, db_name, secret, streams)
    received: dict[int, float] = {}
    readers = [Stream(received) for _ in users]
    rss_before = rss_kib(pid)
    for start in range(0, streams, CONNECT_BATCH):
        batch = list(zip(readers[start : start + CONNECT_BATCH], users[start : start + CONNECT_BATCH], strict=True))
        for reader, (token, _) in batch:
            reader.task = asyncio.create_task(reader.run(url, token))
        await asyncio.wait_for(asyncio.gather(*(r.ready.wait() for r, _ in batch)), 60)
    acked: dict[int, float] = {}
    posted_at: dict[int, float] = {}
    counter = iter(range(10**9))
    peak_rss = rss_kib(pid)
    deadline = time.monotonic() + POST_SECONDS

    async def poster() -> None:
        connection = await Connection.open(url)
        try:
            while time.monotonic() < deadline:
                index = next(counter)
                token, session_id = random.choice(users)
                body = json.dumps({"content": f"lv{index}x"}).encode()
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                posted_at[index] = time.monotonic()
                status = await connection.request("POST", f"/chat/sessions/{session_id}/messages", headers, body)
                if status == 201:
                    acked[index] = time.monotonic()
        finally:
            await connection.close()

    async def sample_rss() -> None:
        nonlocal peak_rss
        while time.monotonic() < deadline:
            peak_rss = max(peak_rss, rss_kib(pid))
            await asyncio.sleep(0.5)

    await asyncio.gather(*(poster() for _ in range(POSTERS)), sample_rss())
    await asyncio.sleep(2.0)  # let the last events arrive
    peak_rss = max(peak_rss, rss_kib(pid))
    for reader in readers:
        reader.close()
    await asyncio.gather(*(r.task for r in readers if r.task), return_exceptions=True)
    delays = sorted(max(0.0, received[i] - acked[i]) * 1000 for i in acked if i in received)
    from_post = sorted((received[i] - posted_at[i]) * 1000 for i in acked if i in received)
    missing = sum(1 for i in acked if i not in received)
    cell = {
        "streams": streams,
        "messages_acknowledged": len(acked),
        "messages_missing": missing,
        "posts_per_second": round(len(acked) / POST_SECONDS, 1),
        "ack_to_event_p50_ms": round(statistics.median(delays), 1) if delays else None,
        "ack_to_event_p99_ms": round(delays[int(len(delays) * 0.99) - 1], 1) if delays else None,
        "post_to_event_p50_ms": round(statistics.median(from_post), 1) if from_post else None,
        "post_to_event_p99_ms": round(from_post[int(len(from_post) * 0.99) - 1], 1) if from_post else None,
        "server_rss_mb_idle": round(rss_before / 1024, 1),
        "server_rss_mb_peak": round(peak_rss / 1024, 1),
    }
    report.progress(
        f"live x{streams} streams: {cell['posts_per_second']} posts/s, ack->event p50 {cell['ack_to_event_p50_ms']} ms "
        f"p99 {cell['ack_to_event_p99_ms']} ms, missing {missing}, server RSS {cell['server_rss_mb_peak']} MB"
    )
    return cell


async def measure(url: str, uri: str, db_name: str, secret: str, pid: int) -> dict[str, Any]:
    cells = {str(n): await _cell(url, uri, db_name, secret, pid, n) for n in STREAM_COUNTS}
    return {
        "streams": cells,
        "targets": {"ack_to_event_p99_ms_at_1000": 500, "server_rss_mb_at_1000": 250},
        "notes": f"{POSTERS} posters for {POST_SECONDS:.0f} s, one stream per user, one uvicorn worker",
    }


def main() -> None:
    import tempfile

    from tests.server_process import ServerProcess

    work = Path(tempfile.mkdtemp(prefix="chat-bench-live-"))
    server = ServerProcess(work / "data", env={"LOG_LEVEL": "WARNING", "MONGODB_DB": "chat"}).start()
    try:
        uri = (work / "data" / "mongodb.uri").read_text().strip()
        secret = (work / "data" / "jwt_secret").read_text().strip()
        assert server.process is not None
        results = asyncio.run(measure(server.base_url, uri, "chat", secret, server.process.pid))
    finally:
        server.stop()
    report.merge("live_updates", results)


if __name__ == "__main__":
    main()
