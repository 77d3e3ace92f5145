"""What operators rely on: /docs served from this server (issue 8, hole 10), Prometheus
metrics behind METRICS_TOKEN, and X-Forwarded-For believed only from configured proxies
(issue 8, hole 10)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from httpx import AsyncClient
from pydantic import SecretStr

from app.ui import SECURITY_HEADERS
from tests.conftest import StartApp
from tests.factories import make_session, make_user
from tests.server_process import ServerProcess

METRICS_TOKEN = "metrics-token-for-tests-0123456789"


async def test_docs_reference_no_other_host_and_their_files_load_with_the_ui_security_headers(
    client: AsyncClient,
) -> None:
    """Hole 10: /docs loaded Swagger UI's script and CSS from a CDN."""
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "//" not in re.sub(r"<!doctype html>", "", page.text, flags=re.I)
    assert "<script>" not in page.text, "inline script would need a looser CSP"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) == 4 and all(asset.startswith("/docs/") for asset in assets)
    for response in [page, *[await client.get(asset) for asset in assets]]:
        assert response.status_code == 200, response.url
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, (response.url, name)
    assert "SwaggerUIBundle" in (await client.get("/docs/vendor/swagger-ui-bundle.js")).text


async def test_metrics_are_off_unless_a_token_is_set(client: AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 404


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_requests_by_route_template_and_time_database_commands(start_app: StartApp) -> None:
    client = await start_app(metrics_token=SecretStr(METRICS_TOKEN))
    scrape = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong-token"})).status_code == 401

    before = (await client.get("/metrics", headers=scrape)).text
    user = await make_user(client)
    sessions = [await make_session(client, user) for _ in range(2)]
    for session in sessions:
        assert (await client.get(f"/chat/sessions/{session['_id']}", headers=user.headers)).status_code == 200
    assert (await client.get("/chat/sessions/000000000000000000000000", headers=user.headers)).status_code == 404
    assert (await client.get("/no/such/path")).status_code == 404
    after = (await client.get("/metrics", headers=scrape)).text

    route = {"method": "GET", "route": "/chat/sessions/{session_id}"}
    assert (
        _sample(after, "http_requests_total", **route, status="200")
        - _sample(before, "http_requests_total", **route, status="200")
        == 2
    )
    assert _sample(after, "http_requests_total", **route, status="404") >= 1
    assert _sample(after, "http_requests_total", method="GET", route="unmatched", status="404") >= 1
    assert _sample(after, "http_request_duration_seconds_count", **route) >= 3
    for session in sessions:
        assert session["_id"] not in after, "a raw path became a label"
    assert _sample(after, "db_command_duration_seconds_count", command="find", outcome="ok") > _sample(
        before, "db_command_duration_seconds_count", command="find", outcome="ok"
    )
    assert _sample(after, "db_command_duration_seconds_count", command="insert", outcome="ok") >= 3


def _clients_logged(server: ServerProcess) -> list[str | None]:
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]
    return [line.get("client") for line in lines if line.get("msg") == "request" and line.get("path") == "/healthz"]


def test_x_forwarded_for_is_believed_only_from_a_configured_proxy(tmp_path: Path) -> None:
    """Hole 10: any local process could claim another address (and so dodge the per-address
    throttles) with X-Forwarded-For."""
    spoofed = {"X-Forwarded-For": "203.0.113.9"}
    for allowed, expected in (("", "127.0.0.1"), ("127.0.0.1", "203.0.113.9")):
        server = ServerProcess(tmp_path / f"data-{allowed or 'none'}", env={"FORWARDED_ALLOW_IPS": allowed}).start()
        try:
            assert httpx.get(f"{server.base_url}/healthz", headers=spoofed, timeout=10).status_code == 200
        finally:
            server.stop()
        assert _clients_logged(server)[-1] == expected, f"FORWARDED_ALLOW_IPS={allowed!r}"
