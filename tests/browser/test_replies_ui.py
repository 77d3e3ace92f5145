"""Replies in the chat UI, against a server with a fake OpenAI-compatible upstream: the model
picker, a reply growing token by token in the tab that asked (read from the response's own
stream) with Stop, a second tab seeing the partial text grow, a failed reply with its reason
and Retry, a dropped response stream carried on by the session stream, Markdown rendered
safely while it streams; axe-core clean at desktop and 375 px."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import httpx
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


# Every text the streaming reply shows, with when it was shown (page time, ms).
RECORD_RENDERS = """() => {
    window.replyRenders = [];
    const list = document.getElementById("message-list");
    new MutationObserver(() => {
        const text = list.querySelector('li[data-status="streaming"] .message-text');
        const renders = window.replyRenders;
        const shown = text ? text.textContent : "";
        if (shown && (!renders.length || renders[renders.length - 1].text !== shown)) {
            renders.push({t: performance.now(), text: shown});
        }
    }).observe(list, {childList: true, subtree: true, characterData: true});
}"""
STORED_EVERY_MS = 250  # how often the server writes a reply's text (the session stream's pace)
SLOW_PIECES = 30  # 100 ms apart, then the model stalls


def _drop_after_created(route: Any, dropped: list[str]) -> None:
    """Pass the reply's request on, but answer only the stream's first event (`reply.created`):
    the stream drops there, as a flaky connection would drop it."""
    request = route.request
    dropped.append(request.url)
    headers = {k: v for k, v in request.all_headers().items() if k.lower() not in ("host", "content-length")}
    with (
        httpx.Client(timeout=10) as http,
        http.stream("POST", request.url, headers=headers, content=request.post_data_buffer) as response,
    ):
        lines = []
        for line in response.iter_lines():
            if not line and lines:
                break
            lines.append(line)
        status = response.status_code
    route.fulfill(status=status, headers={"Content-Type": "text/event-stream"}, body="\n".join(lines) + "\n\n")


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
    picker = ui.page.locator("#reply-picker")  # the chat header's (the new-chat dialog has one too)
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

    # Token by token: pieces 100 ms apart show one by one, more often than the stored text
    # (written every 250 ms) could change; the text only grows. Then a pause to look at it.
    # Waited for by its text, not by a count of renders: on a loaded machine the browser may draw
    # two pieces at once, and the stall must not leave a test counting renders that cannot come.
    upstream.default = Script(pieces=["slow "] * 200, delay=0.1, stall_after=SLOW_PIECES, stall_seconds=30)
    ui.page.evaluate(RECORD_RENDERS)
    ui.send("Count slowly")
    reply = ui.page.locator("#message-list .message-assistant").last
    expect(reply.locator(".message-text")).to_have_text(" ".join(["slow"] * SLOW_PIECES), timeout=30_000)
    renders = ui.page.evaluate("window.replyRenders")
    texts = [render["text"] for render in renders]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts)), texts
    elapsed_ms = renders[-1]["t"] - renders[0]["t"]
    assert len(renders) > elapsed_ms / STORED_EVERY_MS + 2, (elapsed_ms, [(r["t"], len(r["text"])) for r in renders])
    ui.assert_accessible("reply streaming with Stop, desktop")
    reply.get_by_role("button", name="Stop").click()
    expect(reply).to_contain_text("Stopped")
    ui.shot("reply stopped")

    upstream.default = Script(status=500, error_message="the model is overloaded")
    ui.send("Try again")
    reply = ui.page.locator("#message-list .message-assistant").last
    expect(reply).to_contain_text("The reply failed: the model is overloaded (500)")
    ui.shot("reply failed")
    ui.assert_accessible("failed reply with Retry, desktop")
    upstream.default = Script(pieces=["Better", " now."])
    reply.get_by_role("button", name="Retry").click()
    expect(ui.page.locator("#message-list .message-assistant").last).to_contain_text("Better now.")
    ui.shot("retried")

    # The response's stream drops after its first event: the session stream carries the reply on.
    dropped: list[str] = []
    ui.page.route("**/messages?stream=true", lambda route: _drop_after_created(route, dropped))
    upstream.default = Script(pieces=["Carried", " on", " anyway."], delay=0.2)
    ui.send("Drop the stream")
    reply = ui.page.locator("#message-list .message-assistant").last
    expect(reply.locator(".message-text")).to_have_text("Carried on anyway.")
    expect(reply.get_by_role("button", name="Stop")).to_have_count(0)
    ui.page.unroute("**/messages?stream=true")
    assert len(dropped) == 1

    ui.page.get_by_role("button", name="New chat").click()  # a new chat takes its picker's choice
    dialog = ui.page.get_by_role("dialog", name="New chat")
    dialog.get_by_label("Title").fill("Second")
    dialog.get_by_label("Reply with").select_option("model:fake-small")
    ui.shot("new chat picker")
    dialog.get_by_role("button", name="Create").click()
    ui.page.get_by_role("heading", name="Second", exact=True).wait_for()
    expect(picker).to_have_value("model:fake-small")

    phone = make_ui(PHONE)
    phone.goto(f"/chat-ui/#/s/{session['_id']}")
    phone.log_in(user.username, user.password)
    phone.page.locator("#conversation:not([aria-busy])").wait_for()
    expect(phone.page.locator("#message-list .message-assistant").last).to_contain_text("Carried on anyway.")
    expect(phone.page.locator("#reply-picker")).to_be_visible()
    phone.shot("phone")
    phone.assert_accessible("picker and a failed reply with Retry, 375 px")
    upstream.default = Script(pieces=["Thinking", " about", " it"], stall_after=2, stall_seconds=30)
    phone.send("One more")
    reply = phone.page.locator("#message-list .message-assistant").last
    expect(reply.locator(".message-text")).to_have_text("Thinking about")
    phone.shot("phone streaming")
    phone.assert_accessible("reply streaming with Stop, 375 px")
    reply.get_by_role("button", name="Stop").click()
    expect(reply).to_contain_text("Stopped")
    phone.shot("phone stopped")
