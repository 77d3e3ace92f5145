"""`chat login` on a real terminal (a pty: the password is read without echo) and `chat logout`."""

from __future__ import annotations

import os
import pty
import select
import stat
import subprocess
import time
import tomllib
from pathlib import Path

import httpx

from tests.integrations.conftest import Account
from tests.integrations.test_cli import CHAT

PROMPT_TIMEOUT = 60.0


def read_until(fd: int, wanted: bytes, seen: bytearray) -> None:
    deadline = time.monotonic() + PROMPT_TIMEOUT
    while wanted not in seen:
        assert time.monotonic() < deadline, f"no {wanted!r} in {bytes(seen)!r}"
        if select.select([fd], [], [], 0.5)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                chunk = b""
            assert chunk, f"the terminal closed before {wanted!r}: {bytes(seen)!r}"
            seen += chunk


def login_on_a_terminal(env: dict[str, str], answers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """Run `chat login` with a pty as its controlling terminal, answering each prompt."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its stdin, stdout, stderr and /dev/tty
        os.execve(CHAT, [CHAT, "login"], env)
    seen = bytearray()
    try:
        for prompt, answer in answers:
            read_until(fd, prompt, seen)
            os.write(fd, answer + b"\n")
        deadline = time.monotonic() + PROMPT_TIMEOUT
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), bytes(seen)


def test_login_keeps_a_key_that_later_commands_use_and_logout_revokes_it(account: Account, tmp_path: Path) -> None:
    """Issue 20: getting an API key needed curl and a password in JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")} | {
        "XDG_CONFIG_HOME": str(tmp_path / "xdg")
    }
    password = account.password.encode()
    code, shown = login_on_a_terminal(
        env,
        [
            (b"Server URL", account.base_url.encode()),
            (b"Username: ", account.username.encode()),
            (b"Password: ", password),
            (b"Scopes", b""),  # the default, read,write
        ],
    )
    assert code == 0, shown
    assert password not in shown  # not echoed
    path = tmp_path / "xdg" / "chat" / "config.toml"
    assert f"saved in {path}".encode() in shown
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = tomllib.loads(path.read_text())
    assert saved["url"] == account.base_url and saved["username"] == account.username
    key = saved["api_key"]
    with httpx.Client(base_url=account.base_url, headers=account.headers) as rest:
        [listed] = rest.get("/auths/api-keys").json()["items"]
    assert listed["_id"] == saved["api_key_id"] and listed["scopes"] == ["read", "write"]

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CHAT, *args], env=env | extra, capture_output=True, text=True, timeout=60)

    appended = run("append", "logged-in", "hello")  # no CHAT_URL, no CHAT_API_KEY: the saved key
    assert appended.returncode == 0, appended.stderr
    assert run("sessions").stdout.count("logged-in") == 1
    assert run("sessions", CHAT_API_KEY="cak_not-a-real-key").returncode == 4  # the environment wins
    elsewhere = run("sessions", CHAT_URL="http://127.0.0.1:9")  # the saved key never goes to another server
    assert elsewhere.returncode == 4 and "not logged in" in elsewhere.stderr

    logged_out = run("logout")
    assert logged_out.returncode == 0 and "API key revoked" in logged_out.stderr
    assert not path.exists()
    assert httpx.get(f"{account.base_url}/auths/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    not_logged_in = run("sessions")
    assert not_logged_in.returncode == 4 and "not logged in: run `chat login`" in not_logged_in.stderr
