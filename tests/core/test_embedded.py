"""The embedded database's life: it never outlives the app, a left-behind one is stopped, a
busy data directory is refused, and a standalone server (no transactions) still works, with a
warning."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from httpx import ASGITransport, AsyncClient

from app.core import processes
from app.core.config import Settings
from app.core.db import redact_uri
from app.core.embedded import EmbeddedDatabase, EmbeddedDatabaseError
from app.core.processes import process_running
from app.main import create_app
from tests.conftest import TEST_JWT_SECRET
from tests.factories import make_session, make_user, post_message
from tests.server_process import ServerProcess


def test_the_database_does_not_outlive_a_killed_app(tmp_path: Path) -> None:
    """The kernel kills the database with its app (PDEATHSIG), and nothing acknowledged is lost."""
    server = ServerProcess(tmp_path / "data").start()
    try:
        credentials = {"username": "survivor", "password": "survivor-pass"}
        assert httpx.post(f"{server.base_url}/auths/register", json=credentials, timeout=30).status_code == 201
        database_pid = _database_pid(server)
        assert process_running(database_pid)
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGKILL)  # the app alone, not its process group
        server.process.wait(10)
        deadline = time.monotonic() + 15
        while process_running(database_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not process_running(database_pid), _describe(database_pid, server)
    finally:
        server.kill()
    # The data directory is free again: a new server starts on it, with the account.
    restarted = ServerProcess(tmp_path / "data").start()
    try:
        assert httpx.post(f"{restarted.base_url}/auths/login", data=credentials, timeout=30).status_code == 200
    finally:
        restarted.stop()


@pytest.fixture(params=["proc", "ps"])
def process_inspector(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Processes are read from /proc on Linux and from `ps` on macOS: run both ways here."""
    if request.param == "ps":
        monkeypatch.setattr(processes, "PROC", Path("/nonexistent-proc"))


@pytest.fixture
def orphaned_database(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A database started by a shell that then exits: an orphan, like one whose app died on a
    system without PDEATHSIG. Yields its data directory and pid."""
    data_dir = tmp_path / "data"
    (data_dir / "db").mkdir(parents=True)
    orphan_log = tmp_path / "orphan.log"
    shell = subprocess.run(
        ["sh", "-c", '"$0" -m secantus --host 127.0.0.1 --port 0 --storage-path "$1" >"$2" 2>&1 & echo $!']
        + [sys.executable, str((data_dir / "db").resolve()), str(orphan_log)],
        capture_output=True,
        text=True,
        check=True,
    )
    orphan_pid = int(shell.stdout)
    try:
        deadline = time.monotonic() + 30
        while "listening on" not in (orphan_log.read_text() if orphan_log.exists() else ""):
            assert time.monotonic() < deadline, orphan_log.read_text() if orphan_log.exists() else "no log"
            time.sleep(0.05)
        yield data_dir, orphan_pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan_pid, signal.SIGKILL)


@pytest.mark.usefixtures("process_inspector")
async def test_a_database_left_behind_by_a_dead_app_is_stopped_at_the_next_start(
    orphaned_database: tuple[Path, int], caplog: pytest.LogCaptureFixture
) -> None:
    """Otherwise it would hold the data directory, and every later start would fail on its lock."""
    data_dir, orphan_pid = orphaned_database
    dead_app_pid = _pid_of_a_finished_process()
    (data_dir / "secantus.pid").write_text(json.dumps({"pid": orphan_pid, "app_pid": dead_app_pid}))
    database = EmbeddedDatabase(data_dir)
    with caplog.at_level(logging.WARNING):
        await database.start()
    try:
        assert not process_running(orphan_pid)
        assert any(
            r.getMessage() == "stopping the embedded database a previous run left behind" for r in caplog.records
        )
        assert json.loads((data_dir / "secantus.pid").read_text())["pid"] == database.pid
    finally:
        await database.stop()


@pytest.mark.usefixtures("process_inspector")
async def test_a_database_whose_app_still_runs_is_left_alone(orphaned_database: tuple[Path, int]) -> None:
    data_dir, database_pid = orphaned_database
    its_app_pid = processes.process_info(database_pid).parent_pid  # type: ignore[union-attr]
    (data_dir / "secantus.pid").write_text(json.dumps({"pid": database_pid, "app_pid": its_app_pid}))
    with pytest.raises(
        EmbeddedDatabaseError, match=f"in use by a running chat-server or chat-admin \\(pid {its_app_pid}"
    ):
        await EmbeddedDatabase(data_dir).start()
    assert process_running(database_pid)
    assert (data_dir / "secantus.pid").exists()


def _pid_of_a_finished_process() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def test_a_second_server_on_the_same_data_directory_is_refused_and_the_first_keeps_running(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path / "data").start()
    try:
        with pytest.raises(RuntimeError) as refused:
            ServerProcess(tmp_path / "data").start()
        assert "is in use by a running chat-server" in str(refused.value)
        assert "set DATA_DIR to another directory" in str(refused.value)
        assert httpx.get(f"{first.base_url}/readyz", timeout=10).status_code == 200
        assert (tmp_path / "data" / "mongodb.uri").exists(), "the refused server removed the running one's files"
        assert (tmp_path / "data" / "secantus.pid").exists()
    finally:
        assert first.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises the SIGTERM it handled


def test_ctrl_c_stops_the_app_first_then_the_database_cleanly(tmp_path: Path) -> None:
    """A terminal's Ctrl-C sends SIGINT to the whole process group, the database included: it
    must wait for the app to close its client, then stop on the app's SIGTERM, exit code 0."""
    server = ServerProcess(tmp_path / "data").start()
    try:
        assert server.process is not None
        database_pid = _database_pid(server)
        assert "@127.0.0.1:" in (tmp_path / "data" / "mongodb.uri").read_text()
        os.killpg(server.process.pid, signal.SIGINT)
        server.process.wait(30)
        assert not process_running(database_pid)
        events = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]
        messages = [e["msg"] for e in events]
        assert messages.index("Shutting down") < messages.index("embedded database stopped")
        assert next(e for e in events if e["msg"] == "embedded database stopped")["exit_code"] == 0
        assert not (tmp_path / "data" / "mongodb.uri").exists()
        assert not (tmp_path / "data" / "secantus.pid").exists()
    finally:
        server.kill()


def _database_pid(server: ServerProcess) -> int:
    started = next(
        json.loads(line) for line in server.log_path.read_text().splitlines() if '"embedded database started"' in line
    )
    pid: int = started["pid"]
    return pid


def _describe(pid: int, server: ServerProcess) -> str:
    status = Path(f"/proc/{pid}/status")
    signals = [line for line in status.read_text().splitlines() if line.startswith(("State", "PPid", "Sig", "Shd"))]
    database_log = (server.data_dir / "secantus.log").read_text(errors="replace").splitlines()[-15:]
    return "the embedded database outlived its app:\n" + "\n".join(signals + database_log)


def test_the_uri_in_logs_never_shows_a_password() -> None:
    assert redact_uri("mongodb://app:s3cret@db1:27017,db2:27017/?replicaSet=rs0") == (
        "mongodb://app:***@db1:27017,db2:27017/?replicaSet=rs0"
    )
    assert redact_uri("mongodb://127.0.0.1:27017") == "mongodb://127.0.0.1:27017"


@pytest.fixture
def standalone_uri(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A database that presents itself as a standalone server, without transactions."""
    log_path = tmp_path / "standalone.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", "0"]
            + ["--storage-path", str(tmp_path / "db"), "--standalone"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not (match := re.search(r"listening on [\d.]+:(\d+)", log_path.read_text())):
            assert time.monotonic() < deadline and process.poll() is None, log_path.read_text()
            time.sleep(0.05)
        yield f"mongodb://127.0.0.1:{match.group(1)}/?directConnection=true"
    finally:
        process.terminate()
        process.wait(15)


async def test_a_standalone_server_works_without_transactions_and_warns(
    standalone_uri: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        mongodb_uri=standalone_uri,
        jwt_secret=TEST_JWT_SECRET,
        data_dir=tmp_path / "data",
    )
    app = create_app(settings)
    with caplog.at_level(logging.WARNING):
        async with app.router.lifespan_context(app):
            assert app.state.database.supports_transactions is False
            async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as client:
                user = await make_user(client)
                session = await make_session(client, user)
                for i in range(3):
                    assert (await post_message(client, user, session["_id"], f"m{i}"))["seq"] == i + 1
                stored = (await client.get(f"/chat/sessions/{session['_id']}", headers=user.headers)).json()
                assert stored["message_count"] == 3
    assert any("counters can drift after a crash" in r.getMessage() for r in caplog.records)
