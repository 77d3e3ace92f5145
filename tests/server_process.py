"""A real `chat-server` process on a free loopback port, for tests that need one: crashes,
restarts, the browser. It runs in its own process group; its embedded database runs in a
session of its own (signals to the app's group never reach it), so `kill` SIGKILLs both by
pid, at once, as a crash would."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.core.processes import process_running

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    def __init__(
        self, data_dir: Path, port: int | None = None, env: dict[str, str] | None = None, open_files: int | None = None
    ) -> None:
        """`open_files`: start the server with this open-file soft limit (as a system default would)."""
        self.data_dir = data_dir
        self.open_files = open_files
        self.port = port or free_port()
        self.extra_env = env or {}
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URI", "JWT_SECRET"}}
        env.update({"DATA_DIR": str(self.data_dir), "PORT": str(self.port), "HOST": "127.0.0.1"})
        env.update(self.extra_env)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self._limit_open_files if self.open_files else None,  # noqa: PLW1509
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server not ready within {timeout} s:\n{self.log_tail()}")

    def _limit_open_files(self) -> None:
        assert self.open_files is not None
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, hard))

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, as a service manager would; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    @property
    def database_pid(self) -> int | None:
        """The embedded database's pid while it runs (its app records it in DATA_DIR)."""
        try:
            return int(json.loads((self.data_dir / "secantus.pid").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None

    def kill(self) -> None:
        """SIGKILL the app's process group and its embedded database, at once; returns once
        both are gone."""
        if self.process is None:
            return
        database_pid = self.database_pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if database_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(database_pid, signal.SIGKILL)
        self.process.wait(10)
        if database_pid is not None:
            deadline = time.monotonic() + 10
            while process_running(database_pid) and time.monotonic() < deadline:
                time.sleep(0.02)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
