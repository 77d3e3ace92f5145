"""`chat-admin` against the test database (MONGODB_URI), and against DATA_DIR without a server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
from httpx import AsyncClient

from app.core.config import Settings
from app.core.embedded import URI_FILE_NAME
from tests.conftest import TEST_JWT_SECRET
from tests.factories import login_tokens, make_user
from tests.server_process import REPO_ROOT, ServerProcess, free_port


async def chat_admin(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "app.admin.cli", *args]
    full_env = {**{k: v for k, v in os.environ.items() if k not in {"MONGODB_URI", "JWT_SECRET"}}, **env}
    return await asyncio.to_thread(
        subprocess.run, command, input=stdin, capture_output=True, text=True, env=full_env, cwd=REPO_ROOT, timeout=120
    )


def _env(settings: Settings) -> dict[str, str]:
    return {
        "MONGODB_URI": settings.mongodb_uri.get_secret_value(),
        "MONGODB_DB": settings.mongodb_db,
        "JWT_SECRET": TEST_JWT_SECRET,
        "DATA_DIR": str(settings.data_dir),
    }


async def test_create_list_disable_enable_and_seed(client: AsyncClient, settings: Settings) -> None:
    env = _env(settings)
    created = await chat_admin(env, "create-user", "root", "--admin", stdin="root-password-1\n")
    assert created.returncode == 0, created.stderr
    assert "created admin root" in created.stdout
    tokens = await login_tokens(client, "root", "root-password-1")
    assert (
        await client.get("/admin/stats", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    ).status_code == 200

    user = await make_user(client, "worker")
    assert (await chat_admin(env, "disable", "worker")).returncode == 0
    for _ in range(50):  # the server learns it from the revocation poller
        if (await client.get("/auths/me", headers=user.headers)).status_code == 401:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("a user disabled by chat-admin kept access")
    listed = await chat_admin(env, "list-users")
    assert listed.returncode == 0
    rows = {line.split()[0]: line.split()[1:3] for line in listed.stdout.splitlines()[1:]}
    assert rows == {"root": ["admin", "active"], "worker": ["user", "disabled"]}
    assert (await chat_admin(env, "enable", "worker")).returncode == 0
    await login_tokens(client, "worker", user.password)

    seeded = await chat_admin(env, "seed-demo")
    assert seeded.returncode == 0, seeded.stderr
    await login_tokens(client, "alice", "alicepass123")
    await login_tokens(client, "testuser", "testpass123")
    assert "exists already" in (await chat_admin(env, "seed-demo")).stdout


async def test_errors_are_reported_with_an_exit_code(client: AsyncClient, settings: Settings) -> None:
    env = _env(settings)
    short = await chat_admin(env, "create-user", "shorty", stdin="short\n")
    assert short.returncode == 2 and "password" in short.stderr
    bad_name = await chat_admin(env, "create-user", "no spaces allowed", stdin="long-enough-1\n")
    assert bad_name.returncode == 2
    assert (await chat_admin(env, "create-user", "dup", stdin="long-enough-1\n")).returncode == 0
    taken = await chat_admin(env, "create-user", "DUP", stdin="long-enough-1\n")
    assert taken.returncode == 1 and "already taken" in taken.stderr
    missing = await chat_admin(env, "disable", "nobody")
    assert missing.returncode == 1 and "not found" in missing.stderr


async def test_without_a_server_it_refuses_a_new_database_unless_asked_and_ignores_a_stale_uri(tmp_path: Path) -> None:
    """Issue 20: chat-admin run from the wrong folder silently made a new, empty database there."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / URI_FILE_NAME).write_text(f"mongodb://127.0.0.1:{free_port()}/?directConnection=true\n")
    env = {"DATA_DIR": str(data_dir)}
    refused = await chat_admin(env, "create-user", "first", stdin="long-enough-1\n")
    assert refused.returncode == 1 and f"no database in {data_dir}" in refused.stderr
    assert not (data_dir / "db").exists()

    created = await chat_admin(env, "--init", "create-user", "first", stdin="long-enough-1\n")
    assert created.returncode == 0, created.stderr
    assert "stale" in created.stderr and f"a new, empty embedded database in {data_dir}" in created.stderr
    listed = await chat_admin(env, "list-users")
    assert listed.returncode == 0 and "first" in listed.stdout
    assert f"database: the embedded database in {data_dir}, started for this command" in listed.stderr
    assert "ERROR" not in created.stderr + listed.stderr  # no "did not stop in time; killing it"
    assert not (data_dir / URI_FILE_NAME).exists()


async def test_with_a_running_server_it_uses_its_database_or_refuses_when_that_does_not_answer(tmp_path: Path) -> None:
    """Issue 20: chat-admin finds the running server's embedded database, says so, and never
    opens the data directory a running server holds."""
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir, env={"LOG_LEVEL": "WARNING"}).start()
    try:
        env = {"DATA_DIR": str(data_dir)}
        created = await chat_admin(env, "create-user", "root", "--admin", stdin="root-password-1\n")
        assert created.returncode == 0, created.stderr
        assert f"the running server's embedded database in {data_dir}" in created.stderr
        login = await asyncio.to_thread(
            httpx.post, f"{server.base_url}/auths/login", data={"username": "root", "password": "root-password-1"}
        )
        assert login.status_code == 200

        uri_file = data_dir / URI_FILE_NAME
        uri = uri_file.read_text()
        uri_file.write_text(f"mongodb://127.0.0.1:{free_port()}/?directConnection=true\n")
        held = await chat_admin(env, "list-users")
        assert held.returncode == 1 and f"held by a running server (pid {server.process.pid})" in held.stderr
        assert held.stdout == ""
        uri_file.write_text(uri)
    finally:
        server.stop()
