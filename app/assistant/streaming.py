"""A reply streamed in the response that asked for it (`Accept: text/event-stream` or
`?stream=true`): `reply.created` with the stored messages, `reply.delta` events with the text
added, then `reply.done` with the final message. A client that drops the stream loses nothing:
the generation goes on, and the session's event stream and REST show it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from bson import ObjectId
from fastapi import Request, Response
from fastapi.sse import EventSourceResponse, format_sse_event

from app.assistant.service import Assistant
from app.chat.schemas import MessageOut
from app.core.idempotency import REPLAYED_HEADER, StoredResponse

EVENT_STREAM = "text/event-stream"
CREATED = "reply.created"
DELTA = "reply.delta"
DONE = "reply.done"


def wants_stream(request: Request) -> bool:
    return request.query_params.get("stream") == "true" or EVENT_STREAM in request.headers.get("accept", "")


def respond(request: Request, assistant: Assistant, stored: StoredResponse, reply_id: ObjectId) -> Response:
    if not wants_stream(request):
        return stored.to_response()
    headers = {REPLAYED_HEADER: "true"} if stored.replayed else None
    return EventSourceResponse(_events(assistant, stored, reply_id), status_code=stored.status_code, headers=headers)


async def _events(assistant: Assistant, stored: StoredResponse, reply_id: ObjectId) -> AsyncIterator[bytes]:
    yield format_sse_event(event=CREATED, data_str=stored.body)
    async for item in assistant.follow(reply_id):
        if isinstance(item, MessageOut):
            yield format_sse_event(event=DONE, data_str=item.model_dump_json())
            return
        yield format_sse_event(event=DELTA, data_str=json.dumps({"text": item}, ensure_ascii=False))
