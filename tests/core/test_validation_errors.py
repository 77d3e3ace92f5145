"""Issue 8, hole 1: a validation error never echoes its input, is bounded in size, and a lone
surrogate in a JSON string is a 422, not a 500. Account routes take small bodies."""

from __future__ import annotations

import json

from httpx import AsyncClient

from app.core.errors import MAX_VALIDATION_ERRORS
from tests.conftest import StartApp
from tests.factories import make_session, make_user

SECRET = "my-secret-password-echo"


def _many_unknown_keys(count: int) -> bytes:
    body = {f"k{i}": 1 for i in range(count)}
    return json.dumps({"username": "x", "password": SECRET, **body}).encode()


async def test_a_megabyte_of_unknown_keys_answers_a_small_422_without_the_input(start_app: StartApp) -> None:
    """Hole 1: 95,000 unknown keys answered a 9.5 MB 422 echoing every value (and the password)."""
    server = await start_app(max_body_bytes=2 * 1024 * 1024, account_max_body_bytes=2 * 1024 * 1024)
    body = _many_unknown_keys(95_000)
    assert 1_000_000 < len(body) < 2 * 1024 * 1024
    response = await server.post("/auths/register", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert len(response.content) < 4096
    assert SECRET not in response.text
    detail = response.json()["detail"]
    assert 1 <= len(detail) <= MAX_VALIDATION_ERRORS
    for error in detail:
        assert set(error) == {"loc", "msg", "type"}


async def test_account_routes_refuse_large_bodies_at_64_kib(client: AsyncClient) -> None:
    body = _many_unknown_keys(95_000)
    response = await client.post("/auths/register", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json() == {"detail": "Request body too large"}
    small_enough = json.dumps({"username": "x", "password": "p" * 60_000}).encode()
    response = await client.post("/auths/register", content=small_enough, headers={"Content-Type": "application/json"})
    assert response.status_code == 422


async def test_chat_routes_keep_the_larger_limit(start_app: StartApp) -> None:
    server = await start_app(max_body_bytes=1024 * 1024, account_max_body_bytes=64 * 1024)
    user = await make_user(server)
    content = "x" * 30_000
    response = await server.post(
        "/chat/sessions", json={"title": "t", "padding": content * 3}, headers=user.headers
    )  # 90 KB: over the account limit, under the chat one, so it reaches validation
    assert response.status_code == 422
    assert content not in response.text


async def test_a_password_is_never_echoed_in_a_422(client: AsyncClient) -> None:
    user = await make_user(client)
    cases = [
        ("/auths/register", {"username": "a b", "password": SECRET, "role": "admin"}),
        ("/auths/register", {"username": "valid_name", "password": SECRET + "x" * 200}),
        ("/auths/password", {"current_password": SECRET, "new_password": "short"}),
        ("/auths/password", {"current_password": SECRET, "new_password": SECRET, "extra": SECRET}),
    ]
    for path, body in cases:
        response = await client.post(path, json=body, headers=user.headers)
        assert response.status_code == 422, (path, response.text)
        assert SECRET not in response.text
        for error in response.json()["detail"]:
            assert set(error) == {"loc", "msg", "type"}


async def test_a_lone_surrogate_is_a_422_not_a_500(client: AsyncClient) -> None:
    """Hole 1: "\\ud800" in a JSON string was a 500 (the echo could not be encoded, or the
    value reached password hashing or BSON)."""
    user = await make_user(client)
    session = await make_session(client, user)
    raw = '"pass\\ud800word-long"'
    cases = [
        ("/auths/register", f'{{"username": "surrogate_user", "password": {raw}}}', {}),
        ("/auths/register", '{"username": "\\ud800abc", "password": "long-enough-1"}', {}),
        ("/auths/register", '{"\\ud800": 1, "username": "abcdef", "password": "long-enough-1"}', {}),
        ("/auths/refresh", f'{{"refresh_token": {raw}}}', {}),
        ("/chat/sessions", f'{{"title": {raw}}}', user.headers),
        (f"/chat/sessions/{session['_id']}/messages", f'{{"content": {raw}}}', user.headers),
    ]
    for path, body, headers in cases:
        response = await client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})
        assert response.status_code == 422, (path, body, response.text)
        assert response.json()["detail"]
    form = f"username={user.username}&password=%ED%A0%80-and-more".encode()  # an encoded surrogate
    form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert (await client.post("/auths/login", content=form, headers=form_headers)).status_code == 401
