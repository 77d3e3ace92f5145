"""Model replies: what a user may pick, asking for a reply, cancelling one. (A reply asked
together with a message goes through POST /chat/sessions/{id}/messages: see replier.py.)"""

from __future__ import annotations

from fastapi import APIRouter, Body, Request, Response, status

from app.assistant import agents
from app.assistant.dependencies import AssistantDep
from app.assistant.schemas import AgentList, ModelList, RepliesConfig
from app.assistant.streaming import respond
from app.auth.dependencies import CurrentUser
from app.chat.schemas import MessageOut, ReplyTarget
from app.core.idempotency import IdempotencyKey
from app.core.responses import error_responses

router = APIRouter(tags=["assistant"], responses=error_responses(400, 401, 403, 503))


@router.get("/replies/config")
async def replies_config(user: CurrentUser, request: Request) -> RepliesConfig:
    """Whether this server generates replies (MODEL_BASE_URL is set): 200 either way, so that a
    client (the chat UI) can tell without provoking a 503."""
    settings = request.app.state.settings
    enabled = getattr(request.app.state, "assistant", None) is not None
    return RepliesConfig(enabled=enabled, allow_any_model=enabled and settings.model_allow_any)


@router.get("/models")
async def list_models(user: CurrentUser, assistant: AssistantDep) -> ModelList:
    """What you may pick for a reply: the agents, and with MODEL_ALLOW_ANY the upstream's models."""
    return await assistant.choices()


@router.get("/agents")
async def list_agents(user: CurrentUser, assistant: AssistantDep) -> AgentList:
    """The agents an admin set up, in name order."""
    return await agents.list_agents(assistant.database)


@router.post(
    "/chat/sessions/{session_id}/replies",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MessageOut,
    responses=error_responses(404, 409, 429),
)
async def ask_for_reply(
    session_id: str,
    request: Request,
    user: CurrentUser,
    assistant: AssistantDep,
    idempotency: IdempotencyKey,
    target: ReplyTarget | None = Body(default=None),
) -> Response:
    """A reply to the conversation as it stands (after a failure, or to a message a program
    stored): 202 with the new assistant message, status `streaming`. One reply at a time per
    session (409). `Accept: text/event-stream` or `?stream=true`: streamed in the response."""
    stored, reply_id = await assistant.ask(user.id, session_id, None, target or ReplyTarget(), idempotency)
    return respond(request, assistant, stored, reply_id)


@router.post("/chat/sessions/{session_id}/messages/{message_id}/cancel", responses=error_responses(404))
async def cancel_reply(session_id: str, message_id: str, user: CurrentUser, assistant: AssistantDep) -> MessageOut:
    """Stop a reply being generated (on any server instance); it keeps its text so far, status
    `cancelled`. A reply that has ended is answered as it is."""
    return await assistant.cancel(user.id, session_id, message_id)
