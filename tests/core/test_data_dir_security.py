"""Hole 8 of issue 8: the embedded database was open to every local account (a plain driver
client read password hashes and made a user admin; DATA_DIR files were 0644). Now it runs
with --auth on credentials kept in DATA_DIR, and DATA_DIR is owner-only."""

from __future__ import annotations

import json
import os
import pwd
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from app.core.embedded import EmbeddedDatabase
from app.core.embedded_auth import CREDENTIALS_FILE_NAME
from tests.conftest import TEST_JWT_SECRET
from tests.server_process import ServerProcess

UNAUTHORIZED = 13


def _open_to_others(data_dir: Path) -> list[str]:
    entries = [data_dir, *data_dir.rglob("*")]
    return [f"{p} {stat.filemode(p.lstat().st_mode)}" for p in entries if p.lstat().st_mode & 0o077]


def _without_credentials(uri: str) -> str:
    port = re.search(r"@127\.0\.0\.1:(\d+)/", uri)
    assert port, "the recorded URI carries no credentials"
    return f"mongodb://127.0.0.1:{port.group(1)}/?directConnection=true"


def _assert_refused(uri: str) -> None:
    with MongoClient(_without_credentials(uri), serverSelectionTimeoutMS=5000) as stranger:
        for attempt in (
            lambda: stranger.chat.users.find_one(),
            lambda: stranger.chat.users.update_many({}, {"$set": {"role": "admin"}}),
            lambda: stranger.admin.command("createUser", "intruder", pwd="intruder-pass", roles=["root"]),
            lambda: stranger.list_database_names(),
        ):
            with pytest.raises(OperationFailure) as refused:
                attempt()
            assert refused.value.code == UNAUTHORIZED


def test_a_client_without_the_credentials_is_refused_and_nothing_in_data_dir_is_open_to_others(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir).start()
    try:
        credentials = {"username": "guarded", "password": "guarded-pass-1"}
        assert httpx.post(f"{server.base_url}/auths/register", json=credentials, timeout=30).status_code == 201
        uri = (data_dir / "mongodb.uri").read_text().strip()
        _assert_refused(uri)
        with MongoClient(uri, serverSelectionTimeoutMS=5000) as owner:  # what chat-admin uses
            assert owner.chat.users.count_documents({}) == 1
        assert _open_to_others(data_dir) == []
        password = json.loads((data_dir / CREDENTIALS_FILE_NAME).read_text())["password"]
    finally:
        server.stop()
    assert _open_to_others(data_dir) == []
    for log in (server.log_path, data_dir / "secantus.log"):
        assert password not in log.read_text(), f"{log.name} shows the database password"


@pytest.fixture
def data_dir_of_an_older_version(tmp_path: Path) -> Iterator[Path]:
    """A data directory as the version before this fix left it: no credentials, the database
    without --auth, files 0644 and directories 0755. It holds one document."""
    data_dir = tmp_path / "data"
    (data_dir / "db").mkdir(parents=True)
    log_path = data_dir / "secantus.log"
    with log_path.open("wb") as log:
        database = subprocess.Popen(
            [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", "0"]
            + ["--storage-path", str(data_dir / "db")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not (match := re.search(r"listening on [\d.]+:(\d+)", log_path.read_text())):
            assert time.monotonic() < deadline and database.poll() is None, log_path.read_text()
            time.sleep(0.05)
        with MongoClient(f"mongodb://127.0.0.1:{match.group(1)}/?directConnection=true") as client:
            client.chat.canary.insert_one({"kept": True})
    finally:
        database.terminate()
        database.wait(15)
    for path in [data_dir, *data_dir.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    yield data_dir


def test_an_older_data_dir_is_upgraded_its_modes_fixed_and_a_second_server_connects_with_the_uri(
    data_dir_of_an_older_version: Path, tmp_path: Path
) -> None:
    data_dir = data_dir_of_an_older_version
    assert _open_to_others(data_dir)
    server = ServerProcess(data_dir).start()
    try:
        assert _open_to_others(data_dir) == []
        uri = (data_dir / "mongodb.uri").read_text().strip()
        _assert_refused(uri)
        with MongoClient(uri, serverSelectionTimeoutMS=5000) as owner:
            assert owner.chat.canary.find_one({}, {"_id": 0}) == {"kept": True}
        second = ServerProcess(tmp_path / "second", env={"MONGODB_URI": uri, "JWT_SECRET": TEST_JWT_SECRET})
        second.start()  # ready means it authenticated and pinged the database
        try:
            user = {"username": "via_second", "password": "second-pass-1"}
            assert httpx.post(f"{second.base_url}/auths/register", json=user, timeout=30).status_code == 201
        finally:
            second.stop()
    finally:
        server.stop()


async def test_credentials_the_database_does_not_know_are_provisioned_again(tmp_path: Path) -> None:
    """E.g. DATA_DIR/db restored from another machine: the start must not fail on a refused login."""
    database = EmbeddedDatabase(tmp_path / "data")
    await database.start()
    await database.stop()
    credentials_file = tmp_path / "data" / CREDENTIALS_FILE_NAME
    credentials_file.write_text(json.dumps({"username": "chat-server", "password": "not-what-it-knows"}))
    uri = await database.start()
    try:
        assert json.loads(credentials_file.read_text())["password"] != "not-what-it-knows"
        with MongoClient(uri, serverSelectionTimeoutMS=5000) as owner:
            assert owner.admin.command("usersInfo", 1)["users"][0]["user"] == "chat-server"
    finally:
        await database.stop()


def test_a_data_dir_that_cannot_be_written_is_one_clear_line_not_a_traceback(tmp_path: Path) -> None:
    """Root may write anywhere, so the unwritable DATA_DIR here is one under a regular file;
    `make image-check` covers the container's case (a volume owned by another user)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {**os.environ, "DATA_DIR": str(blocker / "data"), "PORT": "1"}
    result = subprocess.run([sys.executable, "-m", "app.cli"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"chat-server: DATA_DIR {blocker / 'data'} is not a writable directory for uid {os.getuid()} "
        f"({pwd.getpwuid(os.getuid()).pw_name}): Not a directory. Give this user its own directory "
        "(in a container: a named volume, or a host directory owned by the image's user, e.g. `chown 10001 DIR`), "
        "or set DATA_DIR to one."
    ]
