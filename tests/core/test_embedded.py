"""The embedded database's life: it never outlives the app, and a standalone server (no
transactions) still works, with a warning."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient

from app.core.config import Settings
from app.core.db import redact_uri
from app.main import create_app
from tests.conftest import TEST_JWT_SECRET
from tests.factories import make_session, make_user, post_message
from tests.server_process import ServerProcess


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


def test_the_database_does_not_outlive_a_killed_app(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        database_pid = _database_pid(server)
        assert _pid_alive(database_pid)
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGKILL)  # the app alone, not its process group
        server.process.wait(10)
        deadline = time.monotonic() + 15
        while _pid_alive(database_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _pid_alive(database_pid), "the embedded database outlived its app"
    finally:
        server.kill()
    # The data directory is free again: a new server starts on it.
    ServerProcess(tmp_path / "data").start().stop()


def test_ctrl_c_stops_the_app_first_then_the_database_cleanly(tmp_path: Path) -> None:
    """A terminal's Ctrl-C sends SIGINT to the whole process group, the database included: it
    must wait for the app to close its client, then stop on the app's SIGTERM, exit code 0."""
    server = ServerProcess(tmp_path / "data").start()
    try:
        assert server.process is not None
        database_pid = _database_pid(server)
        assert (tmp_path / "data" / "mongodb.uri").read_text().startswith("mongodb://127.0.0.1:")
        os.killpg(server.process.pid, signal.SIGINT)
        server.process.wait(30)
        assert not _pid_alive(database_pid)
        events = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]
        messages = [e["msg"] for e in events]
        assert messages.index("Shutting down") < messages.index("embedded database stopped")
        assert next(e for e in events if e["msg"] == "embedded database stopped")["exit_code"] == 0
        assert not (tmp_path / "data" / "mongodb.uri").exists()
    finally:
        server.kill()


def _database_pid(server: ServerProcess) -> int:
    started = next(
        json.loads(line) for line in server.log_path.read_text().splitlines() if '"embedded database started"' in line
    )
    pid: int = started["pid"]
    return pid


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
