"""The MCP server at /mcp (the official `mcp` SDK's low-level server over Streamable HTTP).

Stateless and JSON responses: every POST carries its own bearer token and is answered on its
own, so any server instance can take any request (no session affinity) and no stream is held:
GET (the stream for server-initiated messages) and DELETE (ending a session) answer 405 at
once, before any credentials are read.
The token is checked like the REST API's (`app.auth.dependencies.authenticate`) before the
SDK sees the request: no or bad credentials answer 401 `{"detail"}` with a `WWW-Authenticate`
that points to the RFC 9728 metadata (metadata.py).
A read-only API key is offered, and may call, only the read tools.

Tool results are the REST response models as JSON, as text and as structured content; any
refusal (invalid input, a missing session, a busy database) is a tool error, never a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
from fastapi import FastAPI, Request
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError
from pymongo.errors import PyMongoError
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.auth.dependencies import authenticate
from app.auth.principal import WRITE, AuthenticatedUser
from app.core.background import stop_within
from app.core.errors import (
    UNAVAILABLE_ERRORS,
    AppError,
    DatabaseUnavailable,
    Unauthorized,
    UnprocessableContent,
    error_response,
    validation_details,
)
from app.mcp.metadata import MCP_PATH, challenge
from app.mcp.tools import TOOLS_BY_NAME, Caller, ToolSpec, visible_tools

PATH = MCP_PATH
NO_STREAMS = "This MCP server is stateless and holds no stream: POST each JSON-RPC request"
MAX_ERROR_DATA_CHARS = 64
PRINCIPAL = "chat.principal"  # the ASGI scope key the caller is kept under
log = logging.getLogger(__name__)
STOP_TIMEOUT_SECONDS = 5.0


def _caller(ctx: ServerRequestContext[Any]) -> Caller:
    request = ctx.request
    if not isinstance(request, Request) or not isinstance(request.scope.get(PRINCIPAL), AuthenticatedUser):
        raise RuntimeError("an MCP request reached a tool without its authenticated caller")
    state = request.app.state
    return Caller(request.scope[PRINCIPAL], state.database, state.cursor_codec, getattr(state, "assistant", None))


def _tool(spec: ToolSpec) -> types.Tool:
    read_only = spec.scope != WRITE
    return types.Tool(
        name=spec.name,
        description=spec.description,
        input_schema=spec.input_schema(),
        annotations=types.ToolAnnotations(read_only_hint=read_only, destructive_hint=False, idempotent_hint=read_only),
    )


async def _list_tools(
    ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[_tool(spec) for spec in visible_tools(_caller(ctx))])


def _error(detail: Any, status: int) -> types.CallToolResult:
    body = json.dumps({"detail": detail, "status": status})
    return types.CallToolResult(content=[types.TextContent(type="text", text=body)], is_error=True)


async def _call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
    caller = _caller(ctx)
    spec = TOOLS_BY_NAME.get(params.name)
    if spec is None:
        return _error(f"Unknown tool: {params.name[:64]}", 404)
    if spec.scope not in caller.user.scopes:
        return _error("This API key is read-only", 403)
    try:
        given = spec.inputs.model_validate(params.arguments or {})
        body = await spec.run(caller, given)
    except ValidationError as exc:
        return _error(validation_details([dict(error) for error in exc.errors()]), 422)
    except UnprocessableContent as exc:
        return _error([{"loc": list(exc.loc), "msg": exc.detail, "type": "value_error"}], 422)
    except AppError as exc:
        return _error(exc.detail, exc.status_code)
    except UNAVAILABLE_ERRORS:
        log.warning("database unavailable", extra={"tool": spec.name})
        return _error(DatabaseUnavailable.detail, 503)
    except PyMongoError:
        log.exception("database error", extra={"tool": spec.name})
        return _error("Internal error", 500)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=body)], structured_content=spec.structured(body)
    )


class _ShortErrorData:
    """SDK middleware: an error's `data` that repeats the request (the method name, for "Method
    not found") is cut to MAX_ERROR_DATA_CHARS, as our own errors never echo input whole."""

    async def __call__(self, ctx: ServerRequestContext[Any], call_next: CallNext) -> HandlerResult:
        try:
            return await call_next(ctx)
        except MCPError as exc:
            if isinstance(exc.data, str) and len(exc.data) > MAX_ERROR_DATA_CHARS:
                raise MCPError(exc.code, exc.message, exc.data[:MAX_ERROR_DATA_CHARS] + "…") from None
            raise


def build_server() -> Server[Any]:
    server: Server[Any] = Server(
        "chat-server",
        version="0.1.0",
        instructions="Chat sessions and messages: find a session by name, read it, append to it.",
        on_list_tools=_list_tools,
        on_call_tool=_call_tool,
    )
    server.middleware.append(_ShortErrorData())
    return server


@asynccontextmanager
async def serve_mcp(app: FastAPI) -> AsyncIterator[None]:
    """Run the SDK's session manager for the app's lifespan: it needs its task group running,
    and one manager serves one lifespan (a new one each time). The task group lives in a task
    of its own, because an anyio cancel scope must be left by the task that entered it, and a
    lifespan may be entered and left by different tasks (as test fixtures do)."""
    manager = StreamableHTTPSessionManager(app=build_server(), stateless=True, json_response=True)
    running, stopping = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with manager.run():
            running.set()
            await stopping.wait()

    task = asyncio.create_task(run(), name="mcp-session-manager")
    started = asyncio.create_task(running.wait())
    await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        started.cancel()
        task.result()  # it failed to start: raise why
    app.state.mcp_sessions = manager
    try:
        yield
    finally:
        app.state.mcp_sessions = None
        stopping.set()
        await stop_within(task, STOP_TIMEOUT_SECONDS)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["method"] != "POST":  # GET would open a stream for server messages; there are none
        await error_response(405, NO_STREAMS, {"Allow": "POST"})(scope, receive, send)
        return
    request = Request(scope, receive)
    manager: StreamableHTTPSessionManager | None = getattr(request.app.state, "mcp_sessions", None)
    token = _bearer(request)
    try:
        if manager is None:
            raise DatabaseUnavailable("The server is starting or stopping")
        scope[PRINCIPAL] = await authenticate(request, token)
    except AppError as exc:
        headers = exc.headers
        if isinstance(exc, Unauthorized):  # where MCP clients learn how to authenticate (metadata.py)
            headers = {**(headers or {}), "WWW-Authenticate": challenge(request, token is not None)}
        await error_response(exc.status_code, exc.detail, headers)(scope, receive, send)
        return
    except UNAVAILABLE_ERRORS:
        await error_response(DatabaseUnavailable.status_code, DatabaseUnavailable.detail)(scope, receive, send)
        return
    await manager.handle_request(scope, receive, send)


def mount_mcp(app: FastAPI) -> None:
    app.router.routes.append(
        Route(PATH, endpoint=_Endpoint(), methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )


class _Endpoint:
    """An ASGI app (Starlette calls a class instance as one, not as a request handler)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await mcp_endpoint(scope, receive, send)
