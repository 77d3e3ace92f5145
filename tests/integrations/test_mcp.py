"""The MCP server at /mcp, driven by the official `mcp` SDK's own client over Streamable HTTP
against a live server: the tools, their results (the REST models), errors, and scopes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.factories import wait_for_search_index
from tests.integrations.conftest import Account

READ_TOOLS = {"list_sessions", "read_messages", "search_messages"}
ALL_TOOLS = READ_TOOLS | {"get_or_create_session", "append_messages"}


def connect(base_url: str, token: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return Client(streamable_http_client(f"{base_url}/mcp", http_client=http))


def result_json(result: Any) -> Any:
    assert not result.is_error, result.content
    text = json.loads(result.content[0].text)
    assert result.structured_content == text
    return text


async def test_every_tool_over_http_answers_the_rest_models(account: Account) -> None:
    key = account.api_key(["read", "write"])
    async with connect(account.base_url, key) as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        assert set(tools) == ALL_TOOLS
        assert tools["read_messages"].annotations.read_only_hint is True
        assert "session_id" in tools["append_messages"].input_schema["properties"]

        created = result_json(await mcp.call_tool("get_or_create_session", {"name": "mcp-run-1", "platform": "agent"}))
        again = result_json(await mcp.call_tool("get_or_create_session", {"name": "mcp-run-1"}))
        assert again == created and created["platform"] == "agent" and created["message_count"] == 0
        turn = [
            {"role": "user", "content": "What is 2 + 2?"},
            {"role": "assistant", "content": "4", "metadata": {"model": "fake"}},
        ]
        appended = result_json(await mcp.call_tool("append_messages", {"session_id": created["_id"], "messages": turn}))
        assert [(m["seq"], m["role"], m["content"]) for m in appended["items"]] == [
            (1, "user", "What is 2 + 2?"),
            (2, "assistant", "4"),
        ]
        page = result_json(await mcp.call_tool("read_messages", {"session_id": created["_id"], "after_seq": 1}))
        sessions = result_json(await mcp.call_tool("list_sessions", {"platform": "agent", "limit": 5}))
        async with httpx.AsyncClient(base_url=account.base_url) as server:
            await wait_for_search_index(server)
        found = result_json(await mcp.call_tool("search_messages", {"q": "what is", "platform": "agent"}))
        in_session = result_json(await mcp.call_tool("search_messages", {"q": "4", "session_id": created["_id"]}))
        foreign = await mcp.call_tool("search_messages", {"q": "4", "session_id": "0" * 24})

    with httpx.Client(base_url=account.base_url, headers=account.headers) as rest:
        assert page == rest.get(f"/chat/sessions/{created['_id']}/messages", params={"after_seq": 1}).json()
        assert sessions == rest.get("/chat/sessions", params={"platform": "agent", "limit": 5}).json()
        assert sessions["items"][0]["message_count"] == 2
        assert found == rest.get("/chat/search", params={"q": "what is", "platform": "agent"}).json()
    (hit,) = found["items"]
    assert hit["kind"] == "message" and hit["message"]["seq"] == 1 and hit["session"]["id"] == created["_id"]
    assert [h["message"]["seq"] for h in in_session["items"]] == [2]
    assert foreign.is_error and json.loads(foreign.content[0].text)["status"] == 404


async def test_bad_input_and_missing_sessions_are_tool_errors_that_never_echo_the_input(account: Account) -> None:
    async with connect(account.base_url, account.token) as mcp:
        secret = "x" * 40_000
        too_long = await mcp.call_tool("append_messages", {"session_id": "0" * 24, "messages": [{"content": secret}]})
        assert too_long.is_error and secret[:100] not in too_long.content[0].text
        assert json.loads(too_long.content[0].text)["status"] == 422
        unknown_field = await mcp.call_tool("list_sessions", {"_id": "x"})
        assert unknown_field.is_error and json.loads(unknown_field.content[0].text)["status"] == 422
        missing = await mcp.call_tool("read_messages", {"session_id": "not-an-id"})
        assert missing.is_error and json.loads(missing.content[0].text) == {
            "detail": "Chat session not found",
            "status": 404,
        }
        no_tool = await mcp.call_tool("search_everything", {})
        assert no_tool.is_error


async def test_a_read_only_key_sees_and_calls_only_the_read_tools(account: Account) -> None:
    writer_key = account.api_key(["read", "write"])
    async with connect(account.base_url, writer_key) as mcp:
        session = result_json(await mcp.call_tool("get_or_create_session", {"name": "shared"}))
    reader_key = account.api_key(["read"])
    async with connect(account.base_url, reader_key) as mcp:
        assert {tool.name for tool in (await mcp.list_tools()).tools} == READ_TOOLS
        refused = await mcp.call_tool(
            "append_messages", {"session_id": session["_id"], "messages": [{"content": "sneaky"}]}
        )
        assert refused.is_error and json.loads(refused.content[0].text)["status"] == 403
        assert result_json(await mcp.call_tool("read_messages", {"session_id": session["_id"]}))["items"] == []


def test_without_valid_credentials_mcp_answers_401_pointing_to_its_protected_resource_metadata(live_url: str) -> None:
    """Issue 20: MCP clients got a bare `WWW-Authenticate: Bearer` and an opaque error. Now the
    401 names the RFC 9728 metadata, which says to send a bearer token in the header (no OAuth)."""
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    metadata_url = f"{live_url}/.well-known/oauth-protected-resource/mcp"
    for auth, error in (({}, ""), ({"Authorization": "Bearer not-a-token"}, ', error="invalid_token"')):
        response = httpx.post(f"{live_url}/mcp", json=initialize, headers=headers | auth)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith(f'Bearer resource_metadata="{metadata_url}"{error}')
        assert "detail" in response.json()
    for url in (metadata_url, f"{live_url}/.well-known/oauth-protected-resource"):
        metadata = httpx.get(url)
        assert metadata.status_code == 200
        assert metadata.json() == {
            "resource": f"{live_url}/mcp",
            "resource_name": "Chat server (MCP)",
            "bearer_methods_supported": ["header"],
            "scopes_supported": ["read", "write"],
            "resource_documentation": f"{live_url}/docs",
        }
