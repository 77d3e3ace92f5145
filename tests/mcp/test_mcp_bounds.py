"""Issue 19, rows 3 and 11: /mcp holds no stream (GET is a 405 at once, whoever asks) and its
errors never echo a request back whole."""

from __future__ import annotations

import asyncio

from httpx import AsyncClient

from tests.factories import make_user

JSON_RPC = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def test_get_mcp_for_an_event_stream_is_a_405_at_once(client: AsyncClient) -> None:
    """One account held 1,999 such streams and every other request answered 503."""
    user = await make_user(client)
    for headers in ({**user.headers, "Accept": "text/event-stream"}, {"Accept": "text/event-stream"}):
        response = await asyncio.wait_for(client.get("/mcp", headers=headers), 10)
        assert response.status_code == 405, response.text
        assert response.headers["allow"] == "POST" and "stateless" in response.json()["detail"]
    deleted = await asyncio.wait_for(client.delete("/mcp", headers=user.headers), 10)
    assert deleted.status_code == 405


async def test_method_not_found_does_not_echo_a_huge_method_name(client: AsyncClient) -> None:
    user = await make_user(client)
    method = "m" * 50_000
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}
    response = await client.post("/mcp", json=body, headers={**user.headers, **JSON_RPC})
    assert response.status_code == 200, response.text
    error = response.json()["error"]
    assert error["message"] == "Method not found"
    assert error["data"].startswith("mmm") and len(response.content) < 1000
