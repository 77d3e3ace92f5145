"""Issue 21: stopping the server with a tab open killed it. `docker stop` (SIGTERM to the
group, 10 s grace) with one /chat/events stream open ended in SIGKILL: the server waited for
streams that never end, and the group's signal had already stopped the embedded database
under the running app. Now, on SIGTERM to the whole group: the event streams end at once
(their clients reconnect and resume), in-flight requests finish against a database that is
still up, the app stops the database cleanly, last, and exits 0 within 5 s."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import httpx

from app.core.processes import process_running
from tests.factories import DEFAULT_PASSWORD, register_over_http, unique_username
from tests.server_process import ServerProcess

STREAMS = 200
EXIT_SECONDS = 5.0
READ_SECONDS = 30.0


def _open_event_stream(port: int, token: str) -> socket.socket:
    """A /chat/events stream read as a browser holds it: subscribed once `retry:` arrives."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=READ_SECONDS)
    request = f"GET /chat/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    sock.sendall(request.encode())
    received = b""
    while b"retry:" not in received:
        chunk = sock.recv(4096)
        assert chunk, received
        received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received
    return sock


def _ended(sock: socket.socket) -> bool:
    """Whether the server ended the stream (EOF after what was still buffered)."""
    while chunk := sock.recv(65536):
        assert b"event: reset" not in chunk  # an end, not a "reload everything"
    return True


def test_sigterm_to_the_group_ends_streams_finishes_requests_then_stops_the_database_last(tmp_path: Path) -> None:
    env = {"EVENT_STREAMS_PER_USER": str(STREAMS)}
    server = ServerProcess(tmp_path / "data", env=env).start()
    assert server.process is not None
    try:
        username = unique_username("stop")
        token = register_over_http(server.base_url, username)["Authorization"].removeprefix("Bearer ")
        database_pid = server.database_pid
        assert database_pid is not None and os.getpgid(database_pid) != os.getpgid(server.process.pid)
        streams = [_open_event_stream(server.port, token) for _ in range(STREAMS)]
        # A request in flight when the signal comes: its head and half its body are sent.
        body = json.dumps({"title": "written during the stop"}).encode()
        in_flight = socket.create_connection(("127.0.0.1", server.port), timeout=READ_SECONDS)
        head = (
            f"POST /chat/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        in_flight.sendall(head.encode() + body[:10])
        time.sleep(0.3)  # the head is read: the request is in flight

        signalled = time.monotonic()
        os.killpg(server.process.pid, signal.SIGTERM)  # as `docker stop` or a terminal's group would
        assert all(_ended(sock) for sock in streams)
        streams_ended = time.monotonic() - signalled
        in_flight.sendall(body[10:])
        answer = in_flight.recv(65536)
        assert answer.startswith(b"HTTP/1.1 201"), answer
        assert server.process.wait(EXIT_SECONDS * 4) == 0
        stopped = time.monotonic() - signalled
        print(f"{STREAMS} streams ended {streams_ended:.2f} s after SIGTERM; the server exited after {stopped:.2f} s")
        assert stopped < EXIT_SECONDS, f"exited {stopped:.1f} s after SIGTERM"

        log = server.log_path.read_text()
        events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        messages = [e["msg"] for e in events]
        assert messages.index("Shutting down") < messages.index("embedded database stopped")
        assert next(e for e in events if e["msg"] == "embedded database stopped")["exit_code"] == 0
        assert "Traceback" not in log and "CancelledError" not in log and "graceful shutdown exceeded" not in log
        assert not process_running(database_pid)
        for sock in [*streams, in_flight]:
            sock.close()
    finally:
        server.kill()
    restarted = ServerProcess(tmp_path / "data").start()  # the acknowledged write survived the stop
    try:
        login = {"username": username, "password": DEFAULT_PASSWORD}
        token = httpx.post(f"{restarted.base_url}/auths/login", data=login, timeout=30).json()["access_token"]
        sessions = httpx.get(f"{restarted.base_url}/chat/sessions", headers={"Authorization": f"Bearer {token}"})
        assert [s["title"] for s in sessions.json()["items"]] == ["written during the stop"]
    finally:
        restarted.stop()
