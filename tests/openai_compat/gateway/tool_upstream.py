"""Issue 16's fake upstream, taught one tool: asked about the weather with tools offered, it
calls `get_weather` (whole, or streamed in argument pieces); given the tool's result, it answers
with it; otherwise it says "Anything else?"."""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from tests.assistant.fake_upstream import FakeUpstream, _chunk, _Handler

CALL_ID = "call_weather_1"
ARGUMENT_PIECES = ['{"city"', ': "Paris"}']


def _reply(body: dict[str, Any]) -> dict[str, Any]:
    last = body["messages"][-1]
    if last.get("role") == "tool":
        return {"role": "assistant", "content": f"It is {last['content']} in Paris."}
    if body.get("tools") and "weather" in str(last.get("content", "")).lower():
        function = {"name": "get_weather", "arguments": "".join(ARGUMENT_PIECES)}
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": CALL_ID, "type": "function", "function": function}],
        }
    return {"role": "assistant", "content": "Anything else?"}


class _ToolHandler(_Handler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.fake.requests.append(body)
        message = _reply(body)
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        model = body["model"]
        if not body.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": finish}
            usage = {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
            completion = {"id": "fake", "object": "chat.completion", "created": 0, "model": model}
            self._json(200, {**completion, "choices": [choice], "usage": usage})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._event(_chunk(model, {"role": "assistant", "content": ""}, None))
        if message.get("tool_calls"):
            start = {
                "index": 0,
                "id": CALL_ID,
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
            self._event(_chunk(model, {"tool_calls": [start]}, None))
            for piece in ARGUMENT_PIECES:
                self._event(_chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}, None))
        else:
            for word in str(message["content"]).split(" "):
                self._event(_chunk(model, {"content": word + " "}, None))
        self._event(_chunk(model, {}, finish))
        self._write(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class ToolUpstream(FakeUpstream):
    def start(self) -> ToolUpstream:
        upstream = self

        class Handler(_ToolHandler):
            fake = upstream

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="tool-upstream", daemon=True)
        self._thread.start()
        return self
