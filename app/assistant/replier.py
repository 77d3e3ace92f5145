"""chat.replies.Replier: POST /chat/sessions/{id}/messages with `reply`, answered here."""

from __future__ import annotations

from fastapi import Request, Response

from app.assistant.dependencies import assistant
from app.assistant.streaming import respond
from app.auth.principal import AuthenticatedUser
from app.chat.schemas import MessageCreate, ReplyTarget
from app.core.idempotency import IdempotentRequest


class AssistantReplier:
    async def post_with_reply(
        self,
        request: Request,
        user: AuthenticatedUser,
        raw_session_id: str,
        message: MessageCreate,
        target: ReplyTarget,
        idempotency: IdempotentRequest | None,
    ) -> Response:
        service = assistant(request)
        stored, reply_id = await service.ask(user.id, raw_session_id, message, target, idempotency)
        return respond(request, service, stored, reply_id)
