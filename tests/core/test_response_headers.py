"""Issue 19, rows 14 and 15: redirects never reflect the Host header, and what a user reads
with credentials is neither cached (no-store) nor sniffed (nosniff)."""

from __future__ import annotations

from httpx import AsyncClient

from tests.factories import make_session, make_user


async def test_redirects_are_relative_whatever_the_host_header(client: AsyncClient) -> None:
    for path in ("/chat-ui", "/"):
        response = await client.get(path, headers={"Host": "evil.example"})
        assert response.status_code in (301, 302, 307, 308)
        assert response.headers["location"] == "/chat-ui/", response.headers["location"]


async def test_authenticated_json_is_no_store_and_nosniff(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    for path in ("/chat/sessions", f"/chat/sessions/{session['_id']}", f"/chat/sessions/{session['_id']}/messages"):
        response = await client.get(path, headers=user.headers)
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "no-store", path
        assert response.headers["x-content-type-options"] == "nosniff", path
    refused = await client.get("/chat/sessions", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401 and refused.headers["cache-control"] == "no-store"
    assert (await client.get("/healthz")).headers["x-content-type-options"] == "nosniff"
