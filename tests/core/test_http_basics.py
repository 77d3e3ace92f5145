from __future__ import annotations

import pytest
from httpx import AsyncClient
from pydantic import ValidationError

from app.core.config import Settings, with_persistent_secret
from tests.factories import make_session, make_user


async def test_healthz_and_readyz(client: AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["search_index"]["available"] is True  # the indexer's lag is reported too


async def test_body_over_the_limit_is_413(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    too_big = {"content": "x" * (70 * 1024)}  # the test settings allow 64 KiB
    response = await client.post(f"/chat/sessions/{session['_id']}/messages", json=too_big, headers=user.headers)
    assert response.status_code == 413 and response.json() == {"detail": "Request body too large"}

    async def chunks():  # no Content-Length: the limit holds for streamed bodies too
        for _ in range(80):
            yield b"x" * 1024

    streamed = await client.post(
        "/chat/sessions", content=chunks(), headers={**user.headers, "content-type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_malformed_json_is_422_with_detail(client: AsyncClient) -> None:
    user = await make_user(client)
    headers = {**user.headers, "content-type": "application/json"}
    for body in (b"{", b"[]", b"null", b'{"title": "\xff"}'):
        response = await client.post("/chat/sessions", content=body, headers=headers)
        assert response.status_code in (400, 422), body  # 400 for bytes that are not UTF-8
        assert "detail" in response.json()


async def test_every_response_carries_a_request_id(client: AsyncClient) -> None:
    generated = await client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    echoed = await client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert echoed.headers["x-request-id"] == "trace-123"
    unsafe = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"


async def test_openapi_has_the_authorize_flow(client: AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    flows = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
    assert flows["password"]["tokenUrl"] == "/auths/login"
    assert (await client.get("/docs")).status_code == 200


def test_external_database_without_a_strong_secret_refuses_to_start() -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(_env_file=None, mongodb_uri="mongodb://db.example:27017", jwt_secret="")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="shorter than 32 bytes"):
        Settings(_env_file=None, mongodb_uri="mongodb://db.example:27017", jwt_secret="short")  # type: ignore[call-arg]
    Settings(_env_file=None, mongodb_uri="mongodb://db.example:27017", jwt_secret="s" * 32)  # type: ignore[call-arg]


def test_embedded_mode_keeps_one_generated_secret(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(_env_file=None, data_dir=tmp_path, jwt_secret="")  # type: ignore[call-arg]
    first = with_persistent_secret(settings).jwt_secret.get_secret_value()
    second = with_persistent_secret(settings).jwt_secret.get_secret_value()
    assert first == second and len(first.encode()) >= 32
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o777 == 0o600


async def test_an_unexpected_error_is_a_logged_json_500(app, caplog) -> None:  # type: ignore[no-untyped-def]
    """A bug must still answer JSON with a detail, and leave its traceback and request id in the log."""
    from httpx import ASGITransport

    async def broken() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/test-only/broken", broken)
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/test-only/broken", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500 and response.json() == {"detail": "Internal server error"}
    errors = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert errors and errors[0].exc_info is not None
