"""Hole 9 of issue 8: slow and idle connections were never timed out. Measured against
`make run`: 50 half-sent request heads and 50 silent connections were all still open after
70 s; a body trickled at 1 byte/20 s was held 80 s; with a 1,024 open-file limit, 1,100 idle
connections made /healthz time out. Each test reproduces one of these against a real server
with small limits, on 127.0.0.1, with bounded counts."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server_process import ServerProcess

HEADER_TIMEOUT = 1.5
BODY_TOTAL_TIMEOUT = 3.0
BODY_PAUSE_TIMEOUT = 2.5  # longer than the trickle's pauses: only the total deadline can stop it
SLACK = 1.5
FAST_SECONDS = 0.5


@pytest.fixture
def strict_server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        "REQUEST_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "REQUEST_BODY_TIMEOUT_SECONDS": str(BODY_TOTAL_TIMEOUT),
        "BODY_READ_TIMEOUT_SECONDS": str(BODY_PAUSE_TIMEOUT),
        "MAX_CONNECTIONS": "60",
    }
    server = ServerProcess(tmp_path / "data", env=env).start()
    try:
        yield server
    finally:
        server.kill()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes the connection within `seconds` (whatever it sent first)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
    return False


def test_half_sent_heads_and_silent_connections_are_closed_at_the_header_deadline(
    strict_server: ServerProcess,
) -> None:
    started = time.monotonic()
    silent = [_connect(strict_server.port) for _ in range(20)]
    half_sent = [_connect(strict_server.port) for _ in range(20)]
    for sock in half_sent:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    try:
        for sock in silent + half_sent:
            assert _closed_within(sock, HEADER_TIMEOUT + SLACK - (time.monotonic() - started))
        assert time.monotonic() - started >= HEADER_TIMEOUT - 0.1, "closed before the deadline"
    finally:
        for sock in silent + half_sent:
            sock.close()


def test_a_kept_alive_connection_trickling_its_next_head_is_closed(strict_server: ServerProcess) -> None:
    """The deadline starts again after each response; bytes trickling in do not reset it."""
    with _connect(strict_server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        answered = time.monotonic()
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n":
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if _closed_within(sock, 0.3):
                closed = True
                break
        assert closed, "a trickled head kept the connection"
        assert time.monotonic() - answered < HEADER_TIMEOUT + SLACK


def test_a_body_trickled_byte_by_byte_is_cut_off_at_the_total_deadline(strict_server: ServerProcess) -> None:
    body = json.dumps({"username": "trickler", "password": "trickle-pass-1"}).encode()
    with _connect(strict_server.port) as sock:
        sock.sendall(
            b"POST /auths/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        started = time.monotonic()
        reply = b""
        for byte in body:  # one byte a second: each pause is well under BODY_READ_TIMEOUT_SECONDS
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.settimeout(1.0)
            try:
                reply = sock.recv(65536)
            except TimeoutError:
                continue
            break
        assert time.monotonic() - started < BODY_TOTAL_TIMEOUT + SLACK
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert b"connection: close" in reply.lower()
        assert _closed_within(sock, SLACK)


def test_over_max_connections_requests_are_refused_at_once_and_capacity_returns(
    strict_server: ServerProcess,
) -> None:
    idle = [_connect(strict_server.port) for _ in range(70)]  # more than MAX_CONNECTIONS (60)
    try:
        time.sleep(0.2)
        started = time.monotonic()
        assert httpx.get(f"{strict_server.base_url}/healthz", timeout=5).status_code == 503
        assert time.monotonic() - started < FAST_SECONDS
        deadline = started + HEADER_TIMEOUT + SLACK  # the idle ones are closed at the header deadline
        while (status := httpx.get(f"{strict_server.base_url}/healthz", timeout=5).status_code) != 200:
            assert status == 503 and time.monotonic() < deadline, "capacity did not come back"
            time.sleep(0.1)
    finally:
        for sock in idle:
            sock.close()


def test_healthz_stays_fast_with_more_idle_connections_than_a_default_open_file_limit(tmp_path: Path) -> None:
    """The server raises its open-file soft limit (here started at 1,024) to the hard limit."""
    server = ServerProcess(tmp_path / "data", open_files=1024, env={"MAX_CONNECTIONS": "2000"}).start()
    idle: list[socket.socket] = []
    try:
        idle = [_connect(server.port) for _ in range(1100)]
        time.sleep(0.5)
        with httpx.Client(base_url=server.base_url, timeout=5) as client:
            for _ in range(5):
                started = time.monotonic()
                assert client.get("/healthz").status_code == 200
                assert time.monotonic() - started < FAST_SECONDS
    finally:
        for sock in idle:
            sock.close()
        server.kill()
    assert '"raised the open-file limit"' in server.log_path.read_text()
