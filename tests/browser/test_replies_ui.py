"""Replies in the chat UI, against a server with a fake OpenAI-compatible upstream: the model
picker, a reply growing with Stop, a second tab seeing the partial text grow, a failed reply
with its reason and Retry, Markdown rendered safely while it streams; desktop and 375 px."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.assistant.fake_upstream import FakeUpstream, Script
from tests.browser.harness import DESKTOP, PHONE, UI
from tests.browser.test_live_updates import _second_tab
from tests.server_process import ServerProcess

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

MakeUI = Callable[..., UI]
PIECES = [
    "**Rivers**",
    " of",
    " Portugal:\n\n",
    "- Tejo\n",
    "- Douro\n",
    "- Minho\n\n",
    "<img src=x onerror=alert(1)>",
    " done.",
]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[ServerProcess]:
    env = {"MODEL_BASE_URL": upstream.base_url, "MODEL_ALLOW_ANY": "true"}
    process = ServerProcess(tmp_path_factory.mktemp("replies-ui") / "data", env=env).start()
    yield process
    process.stop()


def _reply(ui: UI) -> object:
    return ui.page.locator("#message-list .message-assistant").last


def test_a_reply_streams_in_two_tabs_stops_fails_and_retries(
    make_ui: MakeUI, api: object, upstream: FakeUpstream
) -> None:
    from tests.browser.harness import Api

    assert isinstance(api, Api)
    user = api.user()
    session = api.session(user, "Rivers")
    ui = make_ui(DESKTOP)
    ui.goto()
    ui.log_in(user.username, user.password)
    ui.open_chat("Rivers")
    picker = ui.page.get_by_label("Reply with")
    expect(picker).to_have_value("model:fake-large")
    picker.select_option("model:fake-small")

    upstream.default = Script(pieces=PIECES, delay=0.4)
    ui.send("Name three rivers")
    reply = ui.page.locator("#message-list .message-assistant").last
    expect(reply.get_by_role("button", name="Stop")).to_be_visible()
    expect(reply.locator("strong")).to_have_text("Rivers")  # Markdown while it streams
    ui.shot("reply streaming")

    tab = _second_tab(ui)  # a second tab mid-reply: the partial text, then it grows
    tab.goto(f"/chat-ui/#/s/{session['_id']}")
    tab.page.locator("#conversation:not([aria-busy])").wait_for()
    tab_reply = tab.page.locator("#message-list .message-assistant").last
    expect(tab_reply.locator("strong")).to_have_text("Rivers")
    expect(tab_reply.locator("li")).to_have_text(["Tejo", "Douro", "Minho"], timeout=15_000)
    expect(tab_reply).to_contain_text("done.", timeout=15_000)
    expect(reply).to_contain_text("<img src=x onerror=alert(1)> done.")  # shown as text, never run
    expect(reply.locator("img")).to_have_count(0)
    expect(reply.get_by_role("button", name="Stop")).to_have_count(0)
    tab.shot("second tab complete")
    tab.assert_clean()
    ui.shot("reply complete")

    upstream.default = Script(pieces=["slow "] * 200, delay=0.1)
    ui.send("Count slowly")
    reply = ui.page.locator("#message-list .message-assistant").last
    expect(reply).to_contain_text("slow")
    reply.get_by_role("button", name="Stop").click()
    expect(reply).to_contain_text("Stopped")
    ui.shot("reply stopped")

    upstream.default = Script(status=500, error_message="the model is overloaded")
    ui.send("Try again")
    reply = ui.page.locator("#message-list .message-assistant").last
    expect(reply).to_contain_text("The reply failed: the model is overloaded (500)")
    ui.shot("reply failed")
    upstream.default = Script(pieces=["Better", " now."])
    reply.get_by_role("button", name="Retry").click()
    expect(ui.page.locator("#message-list .message-assistant").last).to_contain_text("Better now.")
    ui.shot("retried")

    phone = make_ui(PHONE)
    phone.goto(f"/chat-ui/#/s/{session['_id']}")
    phone.log_in(user.username, user.password)
    phone.page.locator("#conversation:not([aria-busy])").wait_for()
    expect(phone.page.locator("#message-list .message-assistant").last).to_contain_text("Better now.")
    expect(phone.page.get_by_label("Reply with")).to_be_visible()
    phone.shot("phone")
