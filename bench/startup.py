"""Start-up cost of the commands people type (`startup` in bench/results.json): wall time of
`chat --help`, `chat append` against the local server, `chat-admin --help` and a `chat-admin`
command against the server's embedded database, each run REPEATS times as a shell would run it.
`python -m bench.startup` runs this part alone (its own server) and adds it to results.json.

Goals (issue 20): `chat append` <= 300 ms, `chat-admin --help` <= 0.5 s, a chat-admin command
<= 2 s. The figures include Python's own start-up, which is most of `--help`."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench import report

REPEATS = 7
BIN = Path(sys.executable).parent
GOALS_MS = {"chat_help": None, "chat_append": 300, "chat_admin_help": 500, "chat_admin_list_users": 2000}


def _wall_ms(command: list[str], env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
        times.append((time.perf_counter() - started) * 1000)
    return times


def measure(url: str, api_key: str, data_dir: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "MONGODB_"))}
    chat_env = env | {"CHAT_URL": url, "CHAT_API_KEY": api_key}
    admin_env = env | {"DATA_DIR": str(data_dir)}
    commands = {
        "chat_help": ([str(BIN / "chat"), "--help"], chat_env),
        "chat_append": ([str(BIN / "chat"), "append", "bench-startup", "hello"], chat_env),
        "chat_admin_help": ([str(BIN / "chat-admin"), "--help"], admin_env),
        "chat_admin_list_users": ([str(BIN / "chat-admin"), "list-users"], admin_env),
    }
    results: dict[str, Any] = {}
    for name, (command, command_env) in commands.items():
        times = _wall_ms(command, command_env)
        results[name] = {
            "min_ms": round(min(times)),
            "median_ms": round(statistics.median(times)),
            "goal_ms": GOALS_MS[name],
        }
        report.progress(f"startup {name}: median {results[name]['median_ms']} ms (min {results[name]['min_ms']})")
    results["runs"] = REPEATS
    return results


def api_key_for(url: str) -> str:
    """A user and a read-write API key on a fresh server."""
    with httpx.Client(base_url=url, timeout=30) as http:
        credentials = {"username": "startup-bench", "password": "startup-bench-1"}
        http.post("/auths/register", json=credentials).raise_for_status()
        token = http.post("/auths/login", data=credentials).json()["access_token"]
        body = {"name": "bench", "scopes": ["read", "write"], "current_password": credentials["password"]}
        created = http.post("/auths/api-keys", json=body, headers={"Authorization": f"Bearer {token}"})
        created.raise_for_status()
        key: str = created.json()["key"]
        return key


def main() -> None:
    import tempfile

    from tests.server_process import ServerProcess

    work = Path(tempfile.mkdtemp(prefix="chat-bench-startup-"))
    server = ServerProcess(work / "data", env={"LOG_LEVEL": "WARNING"}).start()
    try:
        results = measure(server.base_url, api_key_for(server.base_url), work / "data")
    finally:
        server.stop()
    report.merge("startup", results)


if __name__ == "__main__":
    main()
