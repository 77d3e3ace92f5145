"""Issue 8, hole 10: /docs loaded Swagger UI from a CDN (broken offline, and a third-party
script on the UI's origin). Now every file comes from this server, under the UI's strict
Content-Security-Policy: the harness fails the test on any console error (a CSP violation is
one) and on any failed request."""

from __future__ import annotations

from urllib.parse import urlparse

from playwright.sync_api import Request, expect

from tests.browser.test_chat_ui import MakeUI
from tests.server_process import ServerProcess


def test_docs_work_from_this_server_alone_under_a_strict_csp(make_ui: MakeUI, server: ServerProcess) -> None:
    ui = make_ui()
    requested: list[str] = []

    def record(request: Request) -> None:
        requested.append(request.url)

    ui.page.on("request", record)
    ui.page.goto(server.base_url + "/docs")
    expect(ui.page.get_by_role("heading", name="Chat server")).to_be_visible()
    expect(ui.page.get_by_text("/auths/login").first).to_be_visible()
    ui.page.get_by_role("button", name="Authorize").click()
    expect(ui.page.get_by_label("username:")).to_be_visible()
    ui.shot("docs with the authorize dialog")
    origins = {f"{urlparse(url).scheme}://{urlparse(url).netloc}" for url in requested if not url.startswith("data:")}
    assert origins == {server.base_url}
    assert any(url.endswith("/openapi.json") for url in requested)
