"""create_app(settings): the lifespan (database up, then app; app down, then database), the
middleware, the routers, then the chat UI."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse

from app import health, metrics
from app.admin.agents_router import router as admin_agents_router
from app.admin.router import router as admin_router
from app.assistant.lifecycle import serve_assistant
from app.assistant.router import router as assistant_router
from app.auth.api_keys import ApiKeyCache
from app.auth.api_keys_router import router as api_keys_router
from app.auth.revocation import watch_revocations
from app.auth.router import router as auth_router
from app.auth.throttle import PasswordAttempts
from app.chat.router import router as chat_router
from app.chat.search_indexer import index_behind_writes
from app.chat.search_router import router as search_router
from app.chat.upgrade import upgrade_chat_documents
from app.core.capacity import OwnerSlots
from app.core.change_stream import ChangeStreamWatcher, watch_changes
from app.core.changes import ChangeHub
from app.core.config import Settings, with_persistent_secret
from app.core.cursors import CursorCodec
from app.core.db import MESSAGES, SESSION_DELETIONS, SESSIONS, Database, close_client, open_database, redact_uri
from app.core.embedded import EmbeddedDatabase, EmbeddedDatabaseError
from app.core.errors import install_error_handlers
from app.core.hashing import PasswordHashing
from app.core.metrics import Metrics, MetricsMiddleware
from app.core.middleware import BodyLimitMiddleware, RequestContextMiddleware
from app.core.replay_secrets import ReplaySecrets
from app.core.response_headers import ResponseHeadersMiddleware
from app.docs import mount_api_docs
from app.events.router import router as events_router
from app.mcp.metadata import router as mcp_metadata_router
from app.mcp.server import mount_mcp, serve_mcp
from app.openai_compat.router import router as openai_router
from app.transfer.router import router as transfer_router
from app.ui import mount_chat_ui

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# Routes whose bodies are a few fields (ACCOUNT_MAX_BODY_BYTES); chat routes take MAX_BODY_BYTES.
SMALL_BODY_PREFIXES = ("/auths", "/admin")
IMPORT_PATH = "/chat/import"  # takes IMPORT_MAX_BYTES (a multipart form's overhead included)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    embedded = EmbeddedDatabase(settings.data_dir) if settings.embedded else None
    try:
        uri = await _start_embedded(embedded) if embedded else settings.mongodb_uri.get_secret_value()
        log.info(
            "database in use",
            extra={
                "mode": "embedded" if embedded else "external",
                "uri": redact_uri(uri),
                "database": settings.mongodb_db,
            },
        )
        listeners = [app.state.metrics.command_listener] if app.state.metrics else []
        app.state.database = await open_database(uri, settings, listeners)
        await upgrade_chat_documents(app.state.database.db)
        try:
            async with (
                watch_revocations(app.state.database, settings.revocation_poll_seconds) as revocations,
                _change_feed(app.state.database, app.state.change_hub, settings) as change_stream,
                index_behind_writes(app.state.database) as search_indexer,
                serve_mcp(app),
                serve_assistant(app, app.state.database),
            ):
                app.state.revocations = revocations
                app.state.search_indexer = search_indexer
                try:
                    yield
                finally:  # both followers finish their current command at once, not one after the other
                    search_indexer.stop.set()
                    if change_stream is not None:
                        change_stream.stop.set()
        finally:
            await close_client(app.state.database.client)
    finally:
        if embedded:
            await embedded.stop()


@asynccontextmanager
async def _change_feed(
    database: Database, hub: ChangeHub, settings: Settings
) -> AsyncIterator[ChangeStreamWatcher | None]:
    """Feed the event streams: from one change stream (every server's writes), or where
    there are none (a standalone MongoDB) from this process's own writes."""
    if not database.supports_transactions:
        log.warning(
            "the database has no change streams (a standalone server): event streams see only "
            "the writes made through this server process, not those of other instances; run "
            "MongoDB as a replica set (a single node is enough)"
        )
        database.publish_local = hub.publish_local
        yield None
        return
    watched = [SESSIONS, MESSAGES, SESSION_DELETIONS]
    async with watch_changes(database, hub, watched, open_timeout=4 * settings.db_timeout_seconds) as watcher:
        yield watcher


async def _start_embedded(embedded: EmbeddedDatabase) -> str:
    try:
        return await embedded.start()
    except EmbeddedDatabaseError as exc:
        log.error("the embedded database could not start", extra={"reason": str(exc)})
        raise


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    if settings.embedded:
        settings = with_persistent_secret(settings)
    app = FastAPI(
        title="Chat server",
        summary="Chat sessions and messages for people and programs, on MongoDB.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by app.docs, from this server
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    app.state.cursor_codec = CursorCodec(settings.jwt_secret.get_secret_value())
    app.state.replay_secrets = ReplaySecrets(settings.jwt_secret.get_secret_value())
    app.state.api_keys = ApiKeyCache(settings.api_key_cache_seconds, settings.api_key_max_days)
    app.state.password_attempts = PasswordAttempts.from_settings(settings)
    app.state.password_hashing = PasswordHashing.from_settings(settings)
    app.state.change_hub = ChangeHub(
        settings.event_queue_size,
        settings.event_replay_buffer,
        settings.event_streams_per_user,
        # Streams never take more than half the connections: health checks and others' requests get the rest.
        max_streams=min(settings.event_streams_max, max(1, settings.max_connections // 2)),
        buffer_bytes=settings.event_replay_buffer_bytes,
    )
    app.state.heavy_requests = OwnerSlots(settings.heavy_requests_per_user)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(auth_router)
    app.include_router(api_keys_router)
    app.include_router(chat_router)
    app.include_router(search_router)
    app.include_router(transfer_router)
    app.include_router(events_router)
    app.include_router(admin_router)
    app.include_router(mcp_metadata_router)
    app.include_router(assistant_router)
    app.include_router(admin_agents_router)
    app.include_router(openai_router)
    mount_mcp(app)
    app.state.metrics = Metrics() if settings.metrics_token.get_secret_value() else None
    if app.state.metrics:
        app.include_router(metrics.router)
        hub = app.state.change_hub
        app.state.metrics.count_event_streams(lambda: hub.subscriber_count)
    mount_api_docs(app, STATIC_DIR / "api-docs")
    _mount_chat_ui(app)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        read_timeout=settings.body_read_timeout_seconds,
        total_timeout=settings.request_body_timeout_seconds,
        path_limits=(
            (IMPORT_PATH, settings.import_max_bytes),
            *((prefix, settings.account_max_body_bytes) for prefix in SMALL_BODY_PREFIXES),
        ),
    )
    if app.state.metrics:
        app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(ResponseHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware)
    return app


def _mount_chat_ui(app: FastAPI) -> None:
    mount_chat_ui(app, STATIC_DIR / "chat-ui")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/chat-ui/")
