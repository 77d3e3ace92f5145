"""A fake OpenAI-compatible upstream, a real HTTP server on 127.0.0.1, for tests and benches.

`POST /v1/chat/completions` streams (or, without `stream`, answers whole) a `Script`: its text
pieces at a controllable pace, the usage when asked for with `stream_options.include_usage`,
or an HTTP error, a stall past the client's timeout, a connection cut mid-stream, a refusal.
The script is chosen by the request's `model` (`scripts[model]`, else `default`), so one
server can play several at once. `GET /v1/models` lists `models`. Every request body is kept
in `requests` (what history the server under test sent).

    with FakeUpstream() as upstream:
        upstream.scripts["slow"] = Script(pieces=["a"] * 50, delay=0.1)
        settings = ...(model_base_url=upstream.base_url)
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Script:
    pieces: list[str] = field(default_factory=lambda: ["Hello", ", ", "world", "!"])
    delay: float = 0.0  # seconds between pieces
    first_delay: float = 0.0  # seconds before the first piece
    usage: dict[str, int] | None = field(
        default_factory=lambda: {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
    )
    finish_reason: str = "stop"
    status: int | None = None  # answer this HTTP status with an OpenAI-shaped error instead
    error_message: str = "the fake upstream failed"
    stall_after: int | None = None  # after this many pieces, send nothing for stall_seconds
    stall_seconds: float = 30.0
    cut_after: int | None = None  # after this many pieces, drop the connection
    refusal: str | None = None  # send this refusal instead of the pieces
    echo: bool = False  # the pieces are the words of the last user message


@dataclass
class FakeUpstream:
    default: Script = field(default_factory=Script)
    scripts: dict[str, Script] = field(default_factory=dict)
    models: list[str] = field(default_factory=lambda: ["fake-small", "fake-large"])
    requests: list[dict[str, Any]] = field(default_factory=list)
    api_keys: list[str] = field(default_factory=list)  # the bearer keys it was sent

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.stop_event = threading.Event()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script_for(self, model: str) -> Script:
        return self.scripts.get(model, self.default)

    def start(self) -> FakeUpstream:
        upstream = self

        class Handler(_Handler):
            fake = upstream

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def last_messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.requests[-1]["messages"]
        return messages


class _Handler(BaseHTTPRequestHandler):
    fake: FakeUpstream
    protocol_version = "HTTP/1.1"
    # As real servers do (uvicorn, nginx, Go's net/http): each chunk leaves when written. With
    # Nagle's algorithm a chunk written after the headers waited for their ACK, which the
    # client may delay by 40 ms: a stall no real upstream has.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/") != "/v1/models":
            self._json(404, {"error": {"message": "not found"}})
            return
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "fake"} for name in self.fake.models]
        self._json(200, {"object": "list", "data": data})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.fake.requests.append(body)
        self.fake.api_keys.append(self.headers.get("Authorization", "").removeprefix("Bearer "))
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._json(404, {"error": {"message": "not found"}})
            return
        script = self.fake.script_for(str(body.get("model")))
        if script.status is not None:
            self._json(script.status, {"error": {"message": script.error_message, "type": "fake_error"}})
            return
        pieces = _pieces(script, body)
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(pieces)}
            choice = {"index": 0, "message": message, "finish_reason": script.finish_reason}
            self._json(
                200,
                {
                    "id": "fake",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [choice],
                    "usage": script.usage,
                },
            )
            return
        self._stream(script, body, pieces)

    def _stream(self, script: Script, body: dict[str, Any], pieces: list[str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        model = body["model"]
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        try:
            self._wait(script.first_delay)
            self._event(_chunk(model, {"role": "assistant", "content": ""}, None))
            if script.refusal is not None:
                self._event(_chunk(model, {"refusal": script.refusal}, None))
                pieces = []
            for index, piece in enumerate(pieces):
                if script.cut_after is not None and index == script.cut_after:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if script.stall_after is not None and index == script.stall_after:
                    self._wait(script.stall_seconds)
                if index:
                    self._wait(script.delay)
                self._event(_chunk(model, {"content": piece}, None))
            self._event(_chunk(model, {}, script.finish_reason))
            if include_usage and script.usage is not None:
                self._event({**_chunk(model, {}, None), "choices": [], "usage": script.usage})
            self._write(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            return  # the client went away (a cancel, a timeout)

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.fake.stop_event.wait(seconds)

    def _event(self, payload: dict[str, Any]) -> None:
        self._write(f"data: {json.dumps(payload)}\n\n".encode())

    def _write(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _pieces(script: Script, body: dict[str, Any]) -> list[str]:
    if not script.echo:
        return list(script.pieces)
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    words = str(users[-1]["content"]).split(" ") if users else []
    return [word if index == 0 else " " + word for index, word in enumerate(words)]


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [choice]}
