"""The installed `chat` command, run in a subprocess against a live server, as a shell would."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import httpx
from chat_client import Client

from tests.factories import wait_for_search_index_over_http
from tests.integrations.conftest import Account, new_account
from tests.server_process import free_port

CHAT = str(Path(sys.executable).parent / "chat")


def chat(account: Account, key: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHAT_URL": account.base_url, "CHAT_API_KEY": key}
    return subprocess.run([CHAT, *args], input=stdin, env=env, capture_output=True, text=True, timeout=60)


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines()]


def test_append_creates_by_name_then_sessions_and_show_print_it(account: Account) -> None:
    key = account.api_key(["read", "write"])
    first = chat(account, key, "append", "cli-40f58fa9", "Where should we stay?")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("appended #1 (user) to cli-40f58fa9")
    answer = chat(account, key, "--json", "append", "cli-40f58fa9", "-", "--role", "assistant", stdin="Alfama.\n")
    assert answer.returncode == 0, answer.stderr
    stored = json.loads(answer.stdout)
    assert (stored["seq"], stored["role"], stored["content"]) == (2, "assistant", "Alfama.\n")

    listed = chat(account, key, "--json", "sessions", "--platform", "cli")
    [session] = json_lines(listed.stdout)
    assert session["name"] == "cli-40f58fa9" and session["platform"] == "cli" and session["message_count"] == 2
    assert "cli-40f58fa9" in chat(account, key, "sessions").stdout
    assert chat(account, key, "sessions", "--platform", "web").stdout == ""

    shown = chat(account, key, "show", "cli-40f58fa9")
    assert shown.returncode == 0
    assert shown.stdout.startswith("# cli-40f58fa9\n")
    assert "**user** · #1" in shown.stdout and "Where should we stay?" in shown.stdout
    assert "**assistant** · #2" in shown.stdout
    as_json = json_lines(chat(account, key, "--json", "show", session["_id"]).stdout)
    with httpx.Client(base_url=account.base_url, headers=account.headers) as rest:
        assert as_json[0] == {"type": "session", "session": rest.get(f"/chat/sessions/{session['_id']}").json()}
        page = rest.get(f"/chat/sessions/{session['_id']}/messages", params={"after_seq": 0}).json()
    assert as_json[1:] == [{"type": "message", "message": m} for m in page["items"]]


def test_append_loads_neither_the_models_nor_the_rest_of_the_client(account: Account) -> None:
    """Issue 20: `chat append` took 424 ms on a loaded 2-core machine (goal 300), ~90 ms of it
    importing pydantic for the client's models, which the line it prints does not need (nor the
    async client, nor httpx's command line). The command runs in a process that then lists what
    it imported."""
    key = account.api_key(["read", "write"])
    probe = "import sys\nfrom chat_client.cli.main import main\nmain(sys.argv[1:])\nprint(*sys.modules)"
    env = {**os.environ, "CHAT_URL": account.base_url, "CHAT_API_KEY": key}
    done = subprocess.run(
        [sys.executable, "-c", probe, "append", "light", "hello"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    printed, imported = done.stdout.split("\n", 1)
    assert printed.startswith("appended #1 (user) to light (")
    loaded = set(imported.split())
    assert "chat_client._base_client" in loaded
    heavy = {"pydantic", "chat_client._models", "chat_client._client", "chat_client._async_client", "httpx_sse"}
    assert not loaded & (heavy | {"tqdm", "rich", "click", "pygments", "asyncio"})


def test_errors_are_one_line_on_stderr_with_documented_exit_codes(account: Account) -> None:
    key = account.api_key(["read", "write"])
    missing = chat(account, key, "show", "nobody-by-that-name")
    assert (missing.returncode, missing.stdout) == (3, "")
    assert missing.stderr == "chat: error: no session named 'nobody-by-that-name'\n"
    blank = chat(account, key, "append", "s", "   ")
    assert blank.returncode == 1 and blank.stderr.count("\n") == 1 and "content" in blank.stderr
    read_only = chat(account, account.api_key(["read"]), "append", "s", "hi")
    assert read_only.returncode == 4 and read_only.stderr == "chat: error: This API key is read-only\n"
    assert chat(account, "cak_not-a-real-key", "sessions").returncode == 4
    unreachable = subprocess.run(
        [CHAT, "--url", f"http://127.0.0.1:{free_port()}", "--api-key", key, "sessions"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CHAT_URL": ""},
    )
    assert unreachable.returncode == 5 and unreachable.stderr.startswith("chat: error: Could not reach")
    assert chat(account, key, "frobnicate").returncode == 2


def test_follow_prints_messages_as_they_arrive_and_stops_on_ctrl_c(account: Account) -> None:
    key = account.api_key(["read", "write"])
    with Client(account.base_url, api_key=key) as client:
        session = client.session(name="tailed", platform="cli")
        client.append(session, "already there")
        env = {**os.environ, "CHAT_URL": account.base_url, "CHAT_API_KEY": key}
        follower = subprocess.Popen(
            [CHAT, "--json", "follow", "tailed", "--after-seq", "0"], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert follower.stdout is not None
            first = json.loads(follower.stdout.readline())
            client.append(session, "just now", role="assistant")
            second = json.loads(follower.stdout.readline())
        finally:
            follower.send_signal(signal.SIGINT)
            code = follower.wait(30)
    assert [(first["seq"], first["content"]), (second["seq"], second["content"])] == [
        (1, "already there"),
        (2, "just now"),
    ]
    assert code == 130


def test_export_streams_ndjson_with_a_progress_bar_on_a_terminal(account: Account) -> None:
    key = account.api_key(["read", "write"])
    with Client(account.base_url, api_key=key) as client:
        for name in ("older", "newer"):
            session = client.session(name=name)
            client.append_many(session, [{"content": f"{name} {i}"} for i in range(3)])
    plain = chat(account, key, "export")
    assert plain.returncode == 0, plain.stderr
    assert plain.stderr == ""  # no progress bar when stderr is not a terminal
    lines = json_lines(plain.stdout)
    assert lines[0]["type"] == "export" and (lines[0]["sessions"], lines[0]["messages"]) == (2, 6)
    assert [line["session"]["name"] for line in lines if line["type"] == "session"] == ["newer", "older"]
    assert [line["message"]["content"] for line in lines if line["type"] == "message"][:3] == [
        "newer 0",
        "newer 1",
        "newer 2",
    ]

    code, output, shown = chat_on_a_terminal(account, key, "export")
    assert code == 0
    assert output.decode() == plain.stdout.replace(plain.stdout.splitlines()[0], output.decode().splitlines()[0])
    assert b"2 sessions" in shown and b"6/6" in shown


def test_import_sends_an_export_into_another_account_once_with_a_progress_bar(account: Account, tmp_path: Path) -> None:
    """Issue 11: `chat import` shows a progress bar (the bytes sent) on a terminal."""
    key = account.api_key(["read", "write"])
    with Client(account.base_url, api_key=key) as client:
        session = client.session(name="to-move", platform="cli", metadata={"run": 7})
        client.append_many(session, [{"content": f"line {i}"} for i in range(5)])
    exported = tmp_path / "history.ndjson"
    exported.write_text(chat(account, key, "export").stdout)
    other = new_account(account.base_url)
    other_key = other.api_key(["read", "write"])

    code, output, shown = chat_on_a_terminal(other, other_key, "import", str(exported))
    assert code == 0 and b"history.ndjson" in shown and b"100%" in shown
    assert output.decode().splitlines()[:2] == ["sessions: 1 created, 0 unchanged", "messages: 5 created, 0 unchanged"]
    again = chat(other, other_key, "--json", "import", str(exported))
    assert again.returncode == 0 and again.stderr == ""
    report = json.loads(again.stdout)
    assert (report["sessions"], report["messages"]) == ({"created": 0, "unchanged": 1}, {"created": 0, "unchanged": 5})
    shown_back = json_lines(chat(other, other_key, "--json", "show", "to-move").stdout)
    assert [line["message"]["content"] for line in shown_back[1:]] == [f"line {i}" for i in range(5)]

    missing = chat(other, other_key, "import", str(tmp_path / "nope.json"))
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "nope.json" in missing.stderr


def chat_on_a_terminal(account: Account, key: str, *args: str) -> tuple[int, bytes, bytes]:
    """Run `chat` with stderr on a pseudo-terminal: its exit code, stdout, and what the terminal showed."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    env = {**os.environ, "CHAT_URL": account.base_url, "CHAT_API_KEY": key}
    process = subprocess.Popen([CHAT, *args], env=env, stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    output, shown = process.communicate(timeout=60)[0], b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and select.select([controller], [], [], 0.2)[0]:
        try:
            shown += os.read(controller, 4096)
        except OSError:
            break
    os.close(controller)
    return process.returncode, output, shown


def test_global_options_go_before_or_after_the_command(account: Account) -> None:
    """Issue 20: `chat show NAME --json` was a usage error although README documents it."""
    key = account.api_key(["read", "write"])
    assert chat(account, key, "append", "anywhere", "hi").returncode == 0
    after, before = chat(account, key, "show", "anywhere", "--json"), chat(account, key, "--json", "show", "anywhere")
    assert after.returncode == 0 and after.stdout == before.stdout and json_lines(after.stdout)[1]["message"]["content"]
    bare = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    direct = subprocess.run(
        [CHAT, "sessions", "--url", account.base_url, "--api-key", key, "--json"],
        env=bare | {"XDG_CONFIG_HOME": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert direct.returncode == 0 and json_lines(direct.stdout)[0]["name"] == "anywhere"


def test_search_walks_every_page_and_follow_starts_with_the_last_messages(account: Account) -> None:
    key = account.api_key(["read", "write"])
    with Client(account.base_url, api_key=key) as client:
        session = client.session(name="haystack", platform="cli")
        client.append_many(session, [{"content": f"needle number {i}"} for i in range(1, 13)])
        client.append(client.session(name="elsewhere"), "another needle")
        wait_for_search_index_over_http(account.base_url)  # search is built behind the writes
        everywhere = list(client.search("needle", page_size=5))  # three pages and more
    assert len(everywhere) == 13 and everywhere[0].snippet.text == "another needle"
    with httpx.Client(base_url=account.base_url, headers=account.headers) as rest:
        first = rest.get("/chat/search", params={"q": "needle", "limit": 50}).json()["items"]
    assert [hit.model_dump(mode="json") for hit in everywhere] == first

    found = chat(account, key, "--json", "search", "needle", "--session", "haystack")
    assert found.returncode == 0, found.stderr
    hits = json_lines(found.stdout)
    assert [hit["message"]["seq"] for hit in hits] == list(range(12, 0, -1))
    assert {hit["session"]["id"] for hit in hits} == {session.id}
    human = chat(account, key, "search", "needle", "--limit", "2")
    assert human.stdout.splitlines()[1].strip() == "another needle" and human.stdout.count("\n") == 4

    env = {**os.environ, "CHAT_URL": account.base_url, "CHAT_API_KEY": key}
    follower = subprocess.Popen([CHAT, "follow", "haystack", "--last", "3", "--json"], env=env, stdout=subprocess.PIPE)
    try:
        assert follower.stdout is not None
        shown = [json.loads(follower.stdout.readline())["seq"] for _ in range(3)]
        with Client(account.base_url, api_key=key) as client:
            client.append(session, "fresh")
        shown.append(json.loads(follower.stdout.readline())["seq"])
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(30)
    assert shown == [10, 11, 12, 13]
