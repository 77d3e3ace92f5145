from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.assistant.service import Assistant
from app.chat.replies import RepliesUnavailable


def assistant(request: Request) -> Assistant:
    """The app's Assistant; 503 when no model is configured (MODEL_BASE_URL)."""
    found: Assistant | None = getattr(request.app.state, "assistant", None)
    if found is None:
        raise RepliesUnavailable()
    return found


async def _assistant(request: Request) -> Assistant:
    return assistant(request)


AssistantDep = Annotated[Assistant, Depends(_assistant)]
