"""The assistant's part of the app's lifespan: the upstream client and the runner when a model
is configured, and always the sweep that ends replies whose server died."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.assistant.replier import AssistantReplier
from app.assistant.runner import Runner, sweeping
from app.assistant.service import Assistant
from app.assistant.upstream import Upstream
from app.core.config import Settings
from app.core.db import Database

log = logging.getLogger(__name__)


@asynccontextmanager
async def serve_assistant(app: FastAPI, database: Database) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    assistant = None
    if settings.model_base_url:
        upstream = Upstream(settings)
        assistant = Assistant(database, settings, upstream, Runner(database, upstream, settings))
        app.state.assistant = assistant
        app.state.replier = AssistantReplier()
        log.info("model replies enabled", extra={"allow_any_model": settings.model_allow_any})
    try:
        async with sweeping(database):
            yield
    finally:
        if assistant is not None:
            await assistant.close()
