"""`make bench`: a chat-server on a free loopback port with a fresh embedded database (or
MONGODB_URI when set), driven by a separate load-generator process; writes bench/results.json.

BENCH_QUICK=1 runs shorter cells and skips the 100,000-message growth point.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from bson import ObjectId
from pymongo import MongoClient

from app.core.db import MESSAGES, SESSIONS, USERS
from bench import (
    assistant,
    direct,
    integrations,
    live,
    markdown,
    openai_compat,
    openai_gateway,
    probe,
    programs,
    report,
    search,
    startup,
)
from tests.server_process import ServerProcess

QUICK = os.environ.get("BENCH_QUICK") == "1"
SECONDS = 2.0 if QUICK else 5.0
CONCURRENCY = (1, 16, 64)
LOAD_USERS, SESSIONS_PER_USER = 4, 16
GROWTH_MESSAGES = (100, 10_000) if QUICK else (100, 10_000, 100_000)
GROWTH_SESSIONS = (10, 10_000)
PASSWORD = "bench-password-123"


def load(
    url: str,
    method: str,
    targets: list[dict[str, str]],
    concurrency: int,
    seconds: float,
    body: Any = None,
    keyed: bool = False,
) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.load", "--url", url, "--method", method, "--targets", json.dumps(targets)]
    command += ["--concurrency", str(concurrency), "--seconds", str(seconds)]
    command += ["--body", json.dumps(body)] if body is not None else []
    command += ["--keyed"] if keyed else []
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def make_user(http: httpx.Client, name: str) -> tuple[str, str]:
    """(user id, token)."""
    user_id = http.post("/auths/register", json={"username": name, "password": PASSWORD}).json()["_id"]
    token = http.post("/auths/login", data={"username": name, "password": PASSWORD}).json()["access_token"]
    return user_id, token


def main() -> None:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    external = os.environ.get("MONGODB_URI", "")
    db_name = f"bench_{secrets.token_hex(4)}" if external else "chat"
    env = {"LOG_LEVEL": "WARNING", "MONGODB_DB": db_name}
    if external:
        env |= {"MONGODB_URI": external, "JWT_SECRET": secrets.token_urlsafe(48)}
    report.progress(f"starting the server ({'MONGODB_URI' if external else 'embedded database'})")
    server = ServerProcess(work / "data", env=env).start()
    try:
        uri = external or (work / "data" / "mongodb.uri").read_text().strip()
        results = run(server.base_url, uri, db_name, work)
        secret = env.get("JWT_SECRET") or (work / "data" / "jwt_secret").read_text().strip()
        assert server.process is not None
        results["live_updates"] = asyncio.run(live.measure(server.base_url, uri, db_name, secret, server.process.pid))
        if not external:  # chat-admin is measured on the embedded database the server runs
            results["startup"] = startup.measure(server.base_url, startup.api_key_for(server.base_url), work / "data")
    finally:
        server.stop()
        if external:
            with MongoClient(external) as client:
                client.drop_database(db_name)
    # Once the main server (and its embedded database, holding the search corpus) has stopped:
    # its checkpoints would otherwise share the two cores with these latency measurements.
    report.progress("model replies: a server of their own, with a fake upstream")
    results["assistant"] = assistant.measure()
    results["openai_gateway"] = openai_gateway.measure()
    report.write(results)
    markdown.write(results)
    print(report.table(results))
    report.progress(f"done in {time.monotonic() - started:.0f} s")
    if results["collscans"]:
        sys.exit(f"bench: FAILED - collection scans: {results['collscans']}")


def run(url: str, uri: str, db_name: str, work: Path) -> dict[str, Any]:
    http = httpx.Client(base_url=url, timeout=30)
    report.progress(f"creating {LOAD_USERS} users with {SESSIONS_PER_USER} sessions each")
    pairs: list[tuple[ObjectId, ObjectId, str]] = []
    for index in range(LOAD_USERS):
        user_id, token = make_user(http, f"bench{index}_{secrets.token_hex(3)}")
        for _ in range(SESSIONS_PER_USER):
            headers = {"Authorization": f"Bearer {token}"}
            session_id = http.post("/chat/sessions", json={"title": "bench"}, headers=headers).json()["_id"]
            pairs.append((ObjectId(session_id), ObjectId(user_id), token))
    messages = [{"path": f"/chat/sessions/{s}/messages", "token": t} for s, _, t in pairs]
    plans = {
        "send_message": ("POST", messages),
        "list_messages": ("GET", messages),
        "list_sessions": ("GET", [{"path": "/chat/sessions", "token": t} for _, _, t in pairs]),
        "me": ("GET", [{"path": "/auths/me", "token": t} for _, _, t in pairs]),
        "healthz": ("GET", [{"path": "/healthz", "token": ""}]),
    }
    endpoints: dict[str, Any] = {}
    for name, (method, targets) in plans.items():
        endpoints[name] = {"concurrency": {}}
        for concurrency in CONCURRENCY:
            cell = load(url, method, targets, concurrency, SECONDS)
            endpoints[name]["concurrency"][str(concurrency)] = cell
            report.progress(
                f"{name} x{concurrency}: {cell['rps']} rps, p50 {cell['p50_ms']} ms, errors {cell['errors']}"
            )

    ratios: dict[str, dict[str, float]] = {}
    direct_results: dict[str, dict[str, Any]] = {}
    for name in ("send_message", "list_messages"):
        ratios[name], direct_results[name] = {}, {}
        for concurrency in CONCURRENCY:
            targets = [(s, u) for s, u, _ in pairs]
            cell = asyncio.run(direct.measure(uri, db_name, name, targets, concurrency, SECONDS))
            direct_results[name][str(concurrency)] = cell
            api_rps = endpoints[name]["concurrency"][str(concurrency)]["rps"]
            ratios[name][str(concurrency)] = round(api_rps / cell["rps"], 2) if cell["rps"] else 0.0
            report.progress(
                f"direct {name} x{concurrency}: {cell['rps']} ops/s (api/raw {ratios[name][str(concurrency)]})"
            )

    report.progress("counting database commands per request and explaining every query")
    counts, collscans = asyncio.run(probe.probe(uri, work / "probe"))
    for name, entry in counts.items():
        if name in endpoints:
            endpoints[name]["db_commands"] = entry

    agents = programs.measure(http, url, uri, db_name, load, make_user)
    for name, entry in counts.items():
        if name in agents["operations"]:
            agents["operations"][name]["db_commands"] = entry

    report.progress("agent doors: the client package and the LangChain history")
    doors = integrations.measure(http, url, make_user)
    searching = search.measure(http, uri, db_name, make_user, None if os.environ.get("MONGODB_URI") else work / "data")
    report.progress("the OpenAI door: /v1/conversations against /chat for the same work")
    openai_door = openai_compat.measure(http, url, load, make_user)
    growth = measure_growth(http, url, uri, db_name)
    with MongoClient(uri) as client:
        version = client.server_info().get("version", "unknown")
    return {
        "quick": QUICK,
        "seconds_per_cell": SECONDS,
        "endpoints": endpoints,
        "direct": direct_results,
        "api_raw_ratio": ratios,
        "collscans": collscans,
        "programs": agents,
        "integrations": doors,
        "search": searching,
        "openai_compat": openai_door,
        "growth": growth,
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "database": "MongoDB (MONGODB_URI)" if os.environ.get("MONGODB_URI") else "SecantusDB (embedded)",
            "database_version": version,
        },
    }


def measure_growth(http: httpx.Client, url: str, uri: str, db_name: str) -> dict[str, Any]:
    growth: dict[str, Any] = {"send_message": {}, "list_messages": {}, "list_sessions": {}}
    growth["note"] = (
        "bulk-loaded with insert_many; sessions have updated_at one per minute going back from now, "
        "and the user's session_count is set as the API keeps it; measured once the search indexer "
        "has caught up with the load"
    )
    user_id, token = make_user(http, f"growth_{secrets.token_hex(3)}")
    headers = {"Authorization": f"Bearer {token}"}
    with MongoClient(uri, tz_aware=True) as client:
        db = client[db_name]
        for size in GROWTH_MESSAGES:
            report.progress(f"growth: loading a session with {size} messages")
            session_id = ObjectId(http.post("/chat/sessions", json={"title": "growth"}, headers=headers).json()["_id"])
            now = datetime.now(UTC)
            for first in range(1, size + 1, 10_000):
                batch = range(first, min(size, first + 9_999) + 1)
                db[MESSAGES].insert_many(
                    {"session_id": session_id, "user_id": ObjectId(user_id), "role": "user", "content": f"m{seq}"}
                    | {"seq": seq, "created_at": now}
                    for seq in batch
                )
            db[SESSIONS].update_one({"_id": session_id}, {"$set": {"message_count": size}})
            search.wait_for_index(http)  # measured as it runs, not while the indexer catches up
            target = [{"path": f"/chat/sessions/{session_id}/messages", "token": token}]
            growth["list_messages"][str(size)] = load(url, "GET", target, 1, SECONDS / 2)["p50_ms"]
            growth["send_message"][str(size)] = load(url, "POST", target, 1, SECONDS / 2)["p50_ms"]
        for size in GROWTH_SESSIONS:
            report.progress(f"growth: loading a user with {size} sessions")
            owner, owner_token = make_user(http, f"growth_s{size}_{secrets.token_hex(3)}")
            now = datetime.now(UTC).replace(microsecond=0)
            db[SESSIONS].insert_many(
                {"user_id": ObjectId(owner), "title": f"s{i}", "message_count": 0, "last_message_at": None}
                | {"created_at": now - timedelta(minutes=i), "updated_at": now - timedelta(minutes=i)}
                for i in range(size)
            )
            # The count the API keeps on the user as sessions are created (list_sessions reads it).
            db[USERS].update_one({"_id": ObjectId(owner)}, {"$set": {"session_count": size}})
            search.wait_for_index(http)
            target = [{"path": "/chat/sessions", "token": owner_token}]
            growth["list_sessions"][str(size)] = load(url, "GET", target, 1, SECONDS / 2)["p50_ms"]
    return growth


if __name__ == "__main__":
    main()
