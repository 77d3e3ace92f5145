"""The embedded database: SecantusDB as a child process on loopback, data under DATA_DIR.

It runs as a separate process (never imported: it is GPL-2.0, and its work stays off our event
loop). Start-up learns the port it chose from its log, waits for a ping and records the URI in
DATA_DIR/mongodb.uri (0600: it carries the credentials) for admin tools. It runs with --auth:
only clients with the credentials in DATA_DIR/db_credentials get past the handshake (see
embedded_auth for how they are created), and with umask 077, so its files are owner-only.
The child runs in a session (and so a process group) of its own: a terminal's Ctrl-C, `docker
stop` or a supervisor signalling the app's group never reaches it. The app stops it last, on
the way out, once its requests have finished and its client is closed.

It must never stay behind holding the data directory. If the app dies, the kernel SIGKILLs the
child (PDEATHSIG, armed between fork and exec, then a check that the app is still its parent):
nothing is left to wait for a graceful stop, which can wedge, and every acknowledged write is
already journaled, so this is the crash the durability tests cover. PDEATHSIG follows the
thread that started the child: it is started from the event loop's thread, which lives as long
as the app. Where PDEATHSIG does not exist (macOS), DATA_DIR/secantus.pid lets the next start
find the orphan and stop it; a database whose app is still running is left alone, and that
start is refused.

It runs with --sync-on-commit: SecantusDB honours `j: true` on single writes but not on
commitTransaction, and a message and its session's counters commit in one transaction. With
every commit flushed to the journal, an acknowledged message survives a SIGKILL of both
processes (measured: without it, about one acknowledged message per crash was lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from app.core.embedded_auth import Credentials, provision, read_credentials
from app.core.private_files import (
    OWNER_ONLY_UMASK,
    PRIVATE_DIR_MODE,
    open_private_append,
    secure_directory,
    write_private_file,
)
from app.core.processes import process_info, process_running

log = logging.getLogger(__name__)

URI_FILE_NAME = "mongodb.uri"
WAKE_ATTEMPTS, WAKE_INTERVAL_SECONDS = 10, 0.1
LOG_FILE_NAME = "secantus.log"
PID_FILE_NAME = "secantus.pid"
STORAGE_DIR_NAME = "db"
_LISTENING = re.compile(r"listening on ([\d.]+):(\d+)")
_PR_SET_PDEATHSIG = 1
_AUTHENTICATION_FAILED = 18
# Change streams: a no-op oplog entry every 10 s keeps a quiet stream's resume token fresh,
# and an hour of oplog lets a stream broken by a restart resume where it stopped. SecantusDB
# also trims its oplog to a number of entries (100,000 by default), which a large import and
# the indexing behind it pass within minutes: the cap is raised so that the hour governs (a
# million entries: ~1 GB at the ~1 KB of a message's insert), and a stream that still falls
# behind the trimming is caught by the indexer (app.chat.search_indexer).
NOOP_HEARTBEAT_SECONDS = 10
OPLOG_RETENTION_SECONDS = 3600
OPLOG_MAX_ENTRIES = 1_000_000


class EmbeddedDatabaseError(RuntimeError):
    pass


def _child_preparation(app_pid: int) -> Callable[[], None]:
    def prepare() -> None:  # runs in the child between fork and exec, after setsid
        os.umask(OWNER_ONLY_UMASK)
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != app_pid:  # the app died before PDEATHSIG was armed
            os._exit(1)

    return prepare


class EmbeddedDatabase:
    def __init__(
        self,
        data_dir: Path,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
        port: int = 0,
        oplog_max_entries: int = OPLOG_MAX_ENTRIES,
    ) -> None:
        """`port` 0 lets the server pick a free one; a fixed port lets a restarted database come
        back where its clients expect it (the fault tests restart it under a running app)."""
        self.data_dir = data_dir.resolve()
        self.port = port
        self.oplog_max_entries = oplog_max_entries
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.uri = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._owns_files = False
        self._listening_port: int | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def uri_file(self) -> Path:
        return self.data_dir / URI_FILE_NAME

    @property
    def pid_file(self) -> Path:
        return self.data_dir / PID_FILE_NAME

    async def start(self) -> str:
        secure_directory(self.data_dir)
        storage = self.data_dir / STORAGE_DIR_NAME
        storage.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
        await self._stop_leftover(storage)
        credentials = read_credentials(self.data_dir)
        if credentials is None:
            credentials = await self._provision(storage)
        port = await self._launch(storage, auth=True)
        self.uri = credentials.uri("127.0.0.1", port)
        try:
            await self._wait_for_ping()
        except OperationFailure as exc:
            if exc.code != _AUTHENTICATION_FAILED:
                raise
            # Credentials the storage does not know (it was replaced, or restored from elsewhere).
            await self._stop_process("embedded database stopped: its credentials were refused")
            credentials = await self._provision(storage)
            port = await self._launch(storage, auth=True)
            self.uri = credentials.uri("127.0.0.1", port)
            await self._wait_for_ping()
        write_private_file(self.uri_file, self.uri + "\n")
        assert self._process is not None
        write_private_file(self.pid_file, json.dumps({"pid": self._process.pid, "app_pid": os.getpid()}) + "\n")
        self._owns_files = True
        log.info("embedded database started", extra={"pid": self._process.pid, "port": port, "auth": True})
        return self.uri

    async def _provision(self, storage: Path) -> Credentials:
        """Run the database once without --auth to create its user (see embedded_auth)."""
        log.info("creating the embedded database's credentials", extra={"data_dir": str(self.data_dir)})
        port = await self._launch(storage, auth=False)
        try:
            return await provision(
                f"mongodb://127.0.0.1:{port}/?directConnection=true", self.data_dir, self.start_timeout
            )
        finally:
            await self._stop_process("embedded database stopped after creating its credentials")

    async def _launch(self, storage: Path, auth: bool) -> int:
        """Start the child process; returns the port it listens on."""
        log_path = self.data_dir / LOG_FILE_NAME
        offset = log_path.stat().st_size if log_path.exists() else 0
        command = [
            sys.executable, "-m", "secantus",
            "--host", "127.0.0.1", "--port", str(self.port), "--storage-path", str(storage),
            "--sync-on-commit",
            "--noop-heartbeat-seconds", str(NOOP_HEARTBEAT_SECONDS),
            "--oplog-retention-seconds", str(OPLOG_RETENTION_SECONDS),
            "--oplog-max-entries", str(self.oplog_max_entries),
        ]  # fmt: skip
        if auth:
            command.append("--auth")
        log_fd = open_private_append(log_path)
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_child_preparation(os.getpid()),  # noqa: PLW1509 - needed for the umask and PDEATHSIG
            )
        finally:
            os.close(log_fd)
        self._listening_port = await self._wait_for_port(log_path, offset)
        return self._listening_port

    async def _wait_for_port(self, log_path: Path, offset: int) -> int:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            with log_path.open("rb") as handle:
                handle.seek(offset)
                match = _LISTENING.search(handle.read().decode(errors="replace"))
            if match:
                return int(match.group(2))
            if self._process.poll() is not None:
                raise EmbeddedDatabaseError(
                    f"the embedded database exited with code {self._process.returncode}; "
                    f"see {log_path}:\n{_tail(log_path, offset)}"
                )
            await asyncio.sleep(0.05)
        await self.stop()
        raise EmbeddedDatabaseError(f"the embedded database did not start within {self.start_timeout} s")

    async def _wait_for_ping(self) -> None:
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            self.uri, serverSelectionTimeoutMS=int(self.start_timeout * 1000)
        )
        try:
            await client.admin.command("ping")
        finally:
            await client.close()

    async def _stop_leftover(self, storage: Path) -> None:
        """Stop the database a previous run left on this data directory, if its app is gone."""
        leftover = _recorded_database(self.pid_file, storage)
        if leftover is None:
            return
        pid, app_pid, app_runs = leftover
        if app_runs:
            raise EmbeddedDatabaseError(
                f"{self.data_dir} is in use by a running chat-server or chat-admin (pid {app_pid}, "
                f"its database pid {pid}); stop that server, or set DATA_DIR to another directory"
            )
        log.warning("stopping the embedded database a previous run left behind", extra={"pid": pid})
        for stop in (_terminate, lambda pid: os.kill(pid, signal.SIGKILL)):
            with contextlib.suppress(ProcessLookupError):
                stop(pid)
            if await _exited(pid, self.stop_timeout):
                return
        raise EmbeddedDatabaseError(f"the embedded database a previous run left behind (pid {pid}) did not stop")

    async def stop(self) -> None:
        if self._owns_files:
            self._owns_files = False
            for path in (self.uri_file, self.pid_file):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        await self._stop_process("embedded database stopped")

    async def _stop_process(self, message: str) -> None:
        process, self._process = self._process, None
        port, self._listening_port = self._listening_port, None
        if process is None or process.poll() is not None:
            return
        _terminate(process.pid)
        if port is not None:
            await asyncio.to_thread(_wake_accept_loop_until_exit, process, port)
        try:
            await asyncio.to_thread(process.wait, self.stop_timeout)
        except subprocess.TimeoutExpired:
            log.error("embedded database did not stop in time; killing it", extra={"pid": process.pid})
            process.kill()
            await asyncio.to_thread(process.wait)
        log.info(message, extra={"exit_code": process.returncode})


def database_in_use(data_dir: Path) -> int | None:
    """The pid of the running app (chat-server, or chat-admin) whose embedded database holds
    `data_dir`, if one does."""
    data_dir = data_dir.resolve()
    recorded = _recorded_database(data_dir / PID_FILE_NAME, data_dir / STORAGE_DIR_NAME)
    return recorded.app_pid if recorded is not None and recorded.app_runs else None


class _RecordedDatabase(NamedTuple):
    pid: int
    app_pid: int
    app_runs: bool  # the app is still the database's parent


def _recorded_database(pid_file: Path, storage: Path) -> _RecordedDatabase | None:
    """The database in the pid file and whether the app that started it still runs, if
    that process still runs on `storage`: its command line is checked, so a reused pid is never
    taken for it."""
    try:
        recorded = json.loads(pid_file.read_text())
        pid, app_pid = int(recorded["pid"]), int(recorded["app_pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    info = process_info(pid)
    if info is None or info.state == "Z":
        return None
    command = f"{info.command} "
    if "-m secantus " not in command or f"--storage-path {storage} " not in command:
        return None
    return _RecordedDatabase(pid, app_pid, app_runs=info.parent_pid == app_pid)


async def _exited(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process_running(pid):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def _terminate(pid: int) -> None:
    """SIGTERM to the database's main thread. SecantusDB stops in its SIGTERM handler, which
    Python runs in the main thread only, and its main thread sleeps in a lock wait that only a
    signal delivered to that thread interrupts: a SIGTERM sent to the process is delivered to
    any of its threads, and when it lands on another one the handler waits until the main thread
    next wakes, which is never (the stop then took our whole stop timeout and a SIGKILL, a few
    times in a hundred stops on a loaded machine). The main thread's id is the pid; tgkill
    (glibc 2.30+) sends to that thread. Elsewhere (macOS), a signal to the process."""
    try:
        tgkill = ctypes.CDLL(None, use_errno=True).tgkill
    except (OSError, AttributeError):
        os.kill(pid, signal.SIGTERM)
        return
    if tgkill(pid, pid, signal.SIGTERM) != 0 and ctypes.get_errno() != errno.ESRCH:
        os.kill(pid, signal.SIGTERM)


def _wake_accept_loop_until_exit(process: subprocess.Popen[bytes], port: int) -> None:
    """_wake_accept_loop, again while the process runs (for up to a second): a connection that
    arrives before the stop handler has run is accepted as any other, and the accept thread
    then waits for the next one."""
    for _ in range(WAKE_ATTEMPTS):
        _wake_accept_loop(port)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(WAKE_INTERVAL_SECONDS)
            return


def _wake_accept_loop(port: int) -> None:
    """SecantusDB's stop closes its listening socket, then waits up to 2 s for its accept thread,
    which a close does not wake on Linux; one connection does, so a stop takes ~0.1 s, not 2."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        pass


def _tail(path: Path, offset: int, lines: int = 20) -> str:
    with path.open("rb") as handle:
        handle.seek(offset)
        return "\n".join(handle.read().decode(errors="replace").splitlines()[-lines:])
