"""The chat UI at /chat-ui in real Chromium, against a real server: what a person does with it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.browser.harness import DESKTOP, PHONE, UI, Api, ApiUser
from tests.factories import DEFAULT_PASSWORD, unique_username
from tests.server_process import ServerProcess

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

MakeUI = Callable[..., UI]
CHAT_URL = re.compile(r"#/s/[0-9a-f]{24}$")


def session_titles(ui: UI) -> list[str]:
    return ui.page.locator("#session-list .session-title").all_text_contents()


def run_journey(ui: UI, api: Api) -> None:
    """Register, log in, two chats with messages, switch, rename, delete, reload, log out."""
    page = ui.page
    taken = api.user("taken")
    username = unique_username("journey")
    ui.goto()
    expect(ui.login_form).to_be_visible()
    ui.shot("sign in form")

    page.get_by_role("button", name="Create an account").click()
    register = page.get_by_role("form", name="Create an account")
    register.get_by_label("Username").fill(username)
    register.get_by_label("Password").fill("short")
    register.get_by_role("button", name="Create account").click()
    expect(register.get_by_text("Password is too short")).to_be_visible()
    ui.shot("password too short")

    register.get_by_label("Username").fill(taken.username)
    register.get_by_label("Password").fill(DEFAULT_PASSWORD)
    ui.expect_http_error("POST", "/auths/register", 409)
    register.get_by_role("button", name="Create account").click()
    expect(register.get_by_text("Username is already taken")).to_be_visible()
    ui.shot("username taken")

    register.get_by_label("Username").fill(username)
    register.get_by_role("button", name="Create account").click()
    expect(page.get_by_text(username, exact=True)).to_be_attached()
    ui.show_chats()
    expect(ui.chats.get_by_text("No chats yet")).to_be_visible()
    ui.shot("registered, no chats yet")
    if ui.mobile:
        page.keyboard.press("Escape")
        expect(ui.chats).to_be_hidden()

    ui.show_chats()
    page.get_by_role("button", name="Log out").click()
    expect(ui.login_form.get_by_text("You have logged out")).to_be_visible()
    ui.login_form.get_by_label("Username").fill(username)
    ui.login_form.get_by_label("Password").fill("wrong-password")
    ui.expect_http_error("POST", "/auths/login", 401)
    ui.login_form.get_by_role("button", name="Sign in").click()
    expect(ui.login_form.get_by_text("Incorrect username or password")).to_be_visible()
    ui.shot("wrong password")
    ui.log_in(username, DEFAULT_PASSWORD)

    # A new chat through an in-page dialog; Escape closes it.
    ui.show_chats()
    page.get_by_role("button", name="New chat").first.click()
    dialog = page.get_by_role("dialog", name="New chat")
    expect(dialog.get_by_label("Title")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    ui.new_chat("Alpha")
    expect(page).to_have_url(CHAT_URL)
    expect(page.get_by_text("No messages yet")).to_be_visible()
    send = page.get_by_role("button", name="Send")
    expect(send).to_be_disabled()
    ui.shot("empty chat")

    ui.composer.fill("first line")
    expect(send).to_be_enabled()
    hint = page.get_by_text("Enter to send, Shift+Enter for a new line")
    if ui.mobile:  # a touch screen: no Shift+Enter on its keyboard, so Enter is a new line there
        expect(hint).to_be_hidden()
        ui.composer.press("Enter")
        ui.composer.press_sequentially("second line")
        send.click()
    else:
        expect(hint).to_be_visible()
        ui.composer.press("Shift+Enter")
        ui.composer.press_sequentially("second line")
        ui.composer.press("Enter")
    expect(ui.messages.last).to_have_text("first line\nsecond line")
    expect(ui.composer).to_have_value("")
    expect(send).to_be_disabled()
    alpha_url = page.url

    ui.new_chat("Beta")
    ui.send("Read https://example.com/docs?a=1. Thanks!")
    link = ui.messages.last.get_by_role("link", name="https://example.com/docs?a=1")
    expect(link).to_have_attribute("href", "https://example.com/docs?a=1")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(link).to_have_attribute("target", "_blank")
    ui.send("A second message in Beta")
    beta_url = page.url
    assert beta_url != alpha_url
    ui.shot("beta with a link")

    ui.open_chat("Alpha")
    expect(page).to_have_url(alpha_url)
    expect(ui.messages).to_have_count(1)
    ui.show_chats()
    assert session_titles(ui) == ["Beta", "Alpha"]
    if ui.mobile:
        page.keyboard.press("Escape")
    ui.send("Back in Alpha")
    ui.show_chats()
    assert session_titles(ui) == ["Alpha", "Beta"], "the chat just written to moves to the top"
    ui.shot("alpha after switching")
    if ui.mobile:
        page.keyboard.press("Escape")

    page.go_back()
    expect(page).to_have_url(beta_url)
    expect(page.get_by_role("heading", name="Beta", exact=True)).to_be_visible()
    page.go_forward()
    expect(page).to_have_url(alpha_url)
    expect(ui.messages).to_have_count(2)

    page.get_by_role("button", name="Rename chat").click()
    title = page.get_by_label("Chat title")
    expect(title).to_be_focused()
    title.fill("Alpha renamed")
    ui.shot("renaming")
    title.press("Enter")
    expect(page.get_by_role("heading", name="Alpha renamed", exact=True)).to_be_visible()
    expect(ui.page.locator("#session-list").get_by_text("Alpha renamed", exact=True)).to_be_attached()

    ui.open_chat("Beta")
    page.get_by_role("button", name="Delete chat").click()
    confirm = page.get_by_role("dialog", name="Delete this chat?")
    expect(confirm).to_contain_text("2 messages")
    ui.shot("delete confirmation")
    page.keyboard.press("Escape")
    expect(confirm).to_be_hidden()
    expect(page.get_by_role("heading", name="Beta", exact=True)).to_be_visible()
    page.get_by_role("button", name="Delete chat").click()
    confirm.get_by_role("button", name="Delete").click()
    expect(confirm).to_be_hidden()
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    expect(ui.page.locator("#session-list").get_by_text("Beta", exact=True)).to_have_count(0)
    assert session_titles(ui) == ["Alpha renamed"]

    ui.open_chat("Alpha renamed")
    page.reload()
    page.locator("#boot").wait_for(state="hidden")
    expect(page).to_have_url(alpha_url)
    expect(page.get_by_role("heading", name="Alpha renamed", exact=True)).to_be_visible()
    expect(ui.messages).to_have_text(["first line\nsecond line", "Back in Alpha"])
    ui.shot("after reload")

    ui.show_chats()
    page.get_by_role("button", name="Log out").click()
    expect(ui.login_form).to_be_visible()
    ui.shot("logged out")
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('chat-ui.'))") == []


def test_journey_desktop(make_ui: MakeUI, api: Api) -> None:
    run_journey(make_ui(DESKTOP), api)


def test_journey_at_375px_dark(make_ui: MakeUI, api: Api) -> None:
    ui = make_ui(PHONE, color_scheme="dark")
    run_journey(ui, api)
    width = ui.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "nothing overflows sideways at 375 px"


def test_markup_is_shown_as_text(make_ui: MakeUI, api: Api) -> None:
    """What people, tools and systems write is text; only assistant messages are Markdown."""
    ui = make_ui(DESKTOP, color_scheme="dark")
    user = api.user()
    session = api.session(user, "<b>Markup</b> title")
    payload = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    api.message(user, session["_id"], "<a href='javascript:alert(4)'>click</a> <b>bold</b>", "tool")
    api.message(user, session["_id"], "A system note: be nice.", "system")
    ui.goto()
    ui.log_in(user.username, user.password)
    ui.open_chat("<b>Markup</b> title")
    ui.send(payload)
    expect(ui.messages.last).to_have_text(payload)
    expect(ui.messages.nth(0)).to_have_text("<a href='javascript:alert(4)'>click</a> <b>bold</b>")
    message_list = ui.page.locator("#message-list")
    expect(message_list.locator("img, script, b, a")).to_have_count(0)
    expect(ui.page.locator(".message-tool .message-role")).to_have_text(
        "Tool: <a href='javascript:alert(4)'>click</a> <b>bold</b>"
    )
    expect(ui.page.locator(".message-system .message-role")).to_have_text("System: A system note: be nice.")
    ui.page.reload()
    expect(ui.messages.last).to_have_text(payload)
    ui.page.wait_for_timeout(300)  # a chance for any injected handler to fire
    ui.shot("markup as text, dark")
    assert ui.page.evaluate("document.querySelectorAll('#message-list img, #message-list script').length") == 0


def test_message_posted_through_the_api_shows_after_reload(make_ui: MakeUI, api: Api) -> None:
    ui, user, session = _signed_in_with_chat(make_ui, api, "Shared")
    expect(ui.page.get_by_text("No messages yet")).to_be_visible()
    api.message(user, session["_id"], "Hello from the API", "assistant")
    ui.page.reload()
    expect(ui.messages).to_have_text(["Hello from the API"])
    expect(ui.page.locator(".message-assistant")).to_have_count(1)
    ui.shot("api message after reload")

    # A failed send keeps the text and offers a retry.
    path = f"/chat/sessions/{session['_id']}/messages"
    ui.page.route("**" + path, lambda route: route.abort() if route.request.method == "POST" else route.continue_())
    ui.expect_http_error("POST", path, None)
    ui.composer.fill("Will this arrive?")
    ui.composer.press("Enter")
    expect(ui.page.get_by_role("button", name="Retry")).to_be_visible()
    expect(ui.page.get_by_text("Can't reach the server")).to_have_count(2)
    expect(ui.composer).to_have_value("Will this arrive?")
    ui.shot("send failed")
    ui.page.unroute("**" + path)
    ui.page.get_by_role("button", name="Retry").click()
    expect(ui.messages.last).to_have_text("Will this arrive?")
    expect(ui.composer).to_have_value("")


def _signed_in_with_chat(make_ui: MakeUI, api: Api, title: str) -> tuple[UI, ApiUser, dict[str, Any]]:
    """A desktop page signed in as a new user, with that user's chat `title` open."""
    ui = make_ui(DESKTOP)
    user = api.user()
    session = api.session(user, title)
    ui.goto()
    ui.log_in(user.username, user.password)
    ui.open_chat(title)
    return ui, user, session


def test_draft_survives_an_expired_token(make_ui: MakeUI, api: Api) -> None:
    ui, user, session = _signed_in_with_chat(make_ui, api, "Drafts")
    ui.spoil_stored_tokens(access=True, refresh=True)
    ui.composer.fill("A long thought I do not want to lose")
    ui.expect_http_error("POST", f"/chat/sessions/{session['_id']}/messages", 401)
    ui.expect_http_error("POST", "/auths/refresh", 401)
    ui.composer.press("Enter")
    expect(ui.login_form.get_by_text("Your session has expired")).to_be_visible()
    expect(ui.login_form.get_by_label("Username")).to_have_value(user.username)
    ui.shot("session expired")
    ui.login_form.get_by_label("Password").fill(user.password)
    ui.login_form.get_by_role("button", name="Sign in").click()
    expect(ui.page.get_by_role("heading", name="Drafts", exact=True)).to_be_visible()
    expect(ui.composer).to_have_value("A long thought I do not want to lose")
    ui.shot("draft kept after signing in again")
    ui.page.reload()
    expect(ui.composer).to_have_value("A long thought I do not want to lose")
    ui.composer.press("Enter")
    expect(ui.messages).to_have_text(["A long thought I do not want to lose"])
    expect(ui.composer).to_have_value("")  # answered (a reload before that: the test below)
    ui.page.reload()
    expect(ui.messages).to_have_count(1)
    expect(ui.composer).to_have_value("")


def test_a_message_shown_stored_is_no_longer_a_draft_when_the_page_reloads_before_its_answer(
    make_ui: MakeUI, api: Api
) -> None:
    """Regression (seen under load): the live stream showed the sent message before the post's
    answer came, a reload then aborted the post, and the draft came back: sent again, the
    message would have been stored twice."""
    ui, _, session = _signed_in_with_chat(make_ui, api, "Sent")
    path = f"/chat/sessions/{session['_id']}/messages"

    def hold_the_answer(route: Any) -> None:  # the post reaches the server; its answer never comes
        if route.request.method == "POST":
            route.fetch()
        else:
            route.continue_()

    ui.page.route(f"**{path}", hold_the_answer)
    ui.expect_http_error("POST", path, None)  # aborted by the reload
    ui.composer.fill("Sent before the reload")
    ui.composer.press("Enter")
    expect(ui.messages).to_have_text(["Sent before the reload"])  # from the live stream
    ui.page.reload()
    expect(ui.messages).to_have_text(["Sent before the reload"])
    expect(ui.composer).to_have_value("")
    ui.page.unroute_all(behavior="ignoreErrors")


def test_an_expiring_access_token_is_refreshed_silently(make_ui: MakeUI, api: Api) -> None:
    ui, user, session = _signed_in_with_chat(make_ui, api, "Refresh")
    refreshes: list[int] = []
    ui.page.on("response", lambda r: refreshes.append(r.status) if r.url.endswith("/auths/refresh") else None)

    # The access token runs out: the next request refreshes first, the person notices nothing.
    ui.spoil_stored_tokens(expire=True)
    ui.composer.fill("Sent after a silent refresh")
    ui.composer.press("Enter")
    expect(ui.messages.last).to_have_text("Sent after a silent refresh")
    assert refreshes == [200]

    # The server refuses the access token (e.g. revoked): one refresh, the request is retried.
    ui.spoil_stored_tokens(access=True)
    ui.expect_http_error("POST", f"/chat/sessions/{session['_id']}/messages", 401)
    ui.composer.fill("Sent after a retry")
    ui.composer.press("Enter")
    expect(ui.messages.last).to_have_text("Sent after a retry")
    assert refreshes == [200, 200]
    expect(ui.login_form).to_be_hidden()
    ui.shot("still signed in after two refreshes")


def test_older_chats_and_messages_load_on_scroll(make_ui: MakeUI, api: Api) -> None:
    ui = make_ui(DESKTOP)
    user = api.user()
    busy = api.session(user, "Busy")
    for number in range(1, 91):
        api.message(user, busy["_id"], f"message {number}", "assistant" if number % 2 else "user")
    for number in range(34):
        api.session(user, f"Chat {number:02d}")
    ui.goto()
    ui.log_in(user.username, user.password)
    links = ui.chats.get_by_role("link")
    expect(links).to_have_count(30)
    ui.chats.evaluate("nav => nav.scrollTo(0, nav.scrollHeight)")
    expect(links).to_have_count(35)
    expect(links.last).to_contain_text("Busy")

    ui.open_chat("Busy")
    expect(ui.messages.last).to_have_text("message 90")
    expect(ui.messages).to_have_count(40)
    scroller = ui.page.locator("#message-scroller")
    first = ui.page.locator("#message-list .message").first
    expect(first).to_contain_text("message 51")
    scroller.evaluate("el => el.scrollTo(0, 0)")
    expect(ui.messages).to_have_count(80)
    top = scroller.evaluate("el => el.getBoundingClientRect().top")
    anchor = ui.messages.filter(has_text=re.compile(r"^message 51$"))
    offset = anchor.evaluate("el => el.getBoundingClientRect().top") - top
    assert 0 <= offset < 100, f"the message read before stays in view after older ones load ({offset}px)"
    ui.shot("older messages loaded")
    scroller.evaluate("el => el.scrollTo(0, 0)")
    expect(ui.messages).to_have_count(90)
    expect(ui.messages.first).to_have_text("message 1")
    expect(ui.page.get_by_text("This is the beginning of the chat.")).to_be_visible()


def test_ui_is_served_with_security_headers(server: ServerProcess) -> None:
    for path in ("/chat-ui/", "/chat-ui/app.js", "/chat-ui/style.css"):
        response = httpx.get(server.base_url + path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_keyboard_only(make_ui: MakeUI, api: Api) -> None:
    ui = make_ui(DESKTOP)
    user = api.user()
    ui.goto()
    page = ui.page
    expect(ui.login_form.get_by_label("Username")).to_be_focused()
    page.keyboard.type(user.username)
    page.keyboard.press("Tab")
    expect(ui.login_form.get_by_label("Password")).to_be_focused()
    page.keyboard.type(user.password)
    page.keyboard.press("Enter")
    page.locator("#app-view").wait_for(state="visible")

    page.keyboard.press("Tab")
    new_chat = page.get_by_role("button", name="New chat").first
    expect(new_chat).to_be_focused()
    outline = new_chat.evaluate("el => getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth")
    assert outline == "solid 3px", f"focus is visible ({outline})"
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog", name="New chat").get_by_label("Title")).to_be_focused()
    page.keyboard.type("By keyboard")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="By keyboard", exact=True)).to_be_visible()
    expect(ui.composer).to_be_focused()
    page.keyboard.type("typed, not clicked")
    page.keyboard.press("Enter")
    expect(ui.messages).to_have_text(["typed, not clicked"])
    ui.shot("keyboard only")

    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Delete chat")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Rename chat")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Chat title")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Rename chat")).to_be_focused()
    expect(page.get_by_role("heading", name="By keyboard", exact=True)).to_be_visible()


AGENT_REPLY = """## Weather in Lisbon

It is **21 °C** and sunny. Sources:

- [IPMA](https://www.ipma.pt/)
- [Met Office](https://www.metoffice.gov.uk/)

| day | max |
|---|---|
| today | 21 |
| tomorrow | 23 |

```python
def forecast(city: str) -> int:
    return 21
```
"""
TOOL_CALL = {
    "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Lisbon"}'}}
    ],
    "model": "gpt-x",
}


def _agent_conversation(api: Api) -> tuple[ApiUser, dict[str, Any]]:
    user = api.user("agent")
    session = api.session(user, "Agent run", platform="cli", name="cli-40f58fa9", metadata={"session_origin": "cli"})
    sid = session["_id"]
    api.message(user, sid, "You are a weather assistant.", "system")
    api.message(user, sid, "What's the weather in Lisbon?")
    api.message(user, sid, "", "assistant", metadata=TOOL_CALL)
    api.message(
        user, sid, '{"temp_c": 21, "sky": "sunny"}', "tool", metadata={"tool_call_id": "call_1", "name": "get_weather"}
    )
    api.message(user, sid, AGENT_REPLY, "assistant", metadata={"model": "gpt-x", "usage": {"total_tokens": 42}})
    return user, session


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "375px"])
def test_an_agent_conversation_renders_markdown_tools_and_metadata(
    make_ui: MakeUI, api: Api, viewport: dict[str, int]
) -> None:
    ui = make_ui(viewport, color_scheme="dark" if viewport == PHONE else "light")  # both palettes meet axe
    ui.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    user, _ = _agent_conversation(api)
    ui.goto()
    ui.log_in(user.username, user.password)
    ui.show_chats()
    expect(ui.chats.locator(".platform-badge")).to_have_text(["cli"])
    ui.open_chat("Agent run")
    page = ui.page
    reply = page.locator(".message-assistant .markdown").last
    expect(reply.get_by_role("heading", name="Weather in Lisbon")).to_be_visible()
    expect(reply.locator("strong")).to_have_text("21 °C")
    expect(reply.locator("table td")).to_have_text(["today", "21", "tomorrow", "23"])
    link = reply.get_by_role("link", name="IPMA")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(reply.locator(".code-head")).to_contain_text("python")
    expect(reply.locator("code.hljs .hljs-keyword").first).to_have_text("def")  # highlighted under the CSP
    call = page.get_by_role("list", name="Tool calls").get_by_role("listitem")
    expect(call.locator(".tool-call-name")).to_have_text("Calls get_weather")
    expect(call.locator("pre.tool-args")).to_have_text('{\n  "city": "Lisbon"\n}')

    tool = page.locator(".message-tool details.bubble-compact")
    expect(tool.locator("summary.message-role")).to_have_text('Tool · get_weather: {"temp_c": 21, "sky": "sunny"}')
    expect(tool.locator(".message-text")).to_be_hidden()
    ui.shot("agent conversation")
    tool.locator("summary.message-role").click()
    expect(tool.locator(".message-text")).to_be_visible()
    expect(tool.locator(".message-text")).to_have_text('{\n  "temp_c": 21,\n  "sky": "sunny"\n}')
    expect(page.locator(".message-metadata")).to_have_count(2)  # not on the tool result: its keys are shown
    metadata = page.locator(".message-assistant .message-metadata").last
    metadata.locator("summary").click()
    expect(metadata.locator("pre")).to_contain_text('"total_tokens": 42')
    reply.get_by_role("button", name="Copy").click()
    expect(reply.get_by_role("button", name="Copied")).to_be_visible()
    assert "def forecast" in page.evaluate("navigator.clipboard.readText()")
    ui.shot("tool result, metadata and code copied")
    ui.assert_accessible("agent conversation, tool result and metadata open")
    if ui.mobile:
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_markdown_in_an_assistant_message_runs_nothing(make_ui: MakeUI, api: Api) -> None:
    ui = make_ui(DESKTOP)
    user = api.user()
    session = api.session(user, "Hostile")
    hostile = (
        "<img src=x onerror=\"window.__pwned='img'\">\n\n"
        "[click me](javascript:window.__pwned='link')\n\n"
        "<a href=\"javascript:window.__pwned='a'\">raw link</a>\n\n"
        "<script>window.__pwned='script'</script><iframe src=\"javascript:alert(1)\"></iframe>\n\n"
        '<p style="position:fixed;inset:0" class="scrim" onclick="window.__pwned=\'p\'">overlay</p>\n\n'
        "[ok](https://example.org/)"
    )
    api.message(user, session["_id"], hostile, "assistant")
    ui.goto()
    ui.log_in(user.username, user.password)
    ui.open_chat("Hostile")
    reply = ui.page.locator(".message-assistant .markdown")
    expect(reply.get_by_role("link", name="ok")).to_have_attribute("href", "https://example.org/")
    expect(reply.locator("img, script, iframe, [onerror], [onclick], [style], [class]")).to_have_count(0)
    assert (
        ui.page.evaluate(
            "[...document.querySelectorAll('#message-list a')].filter(a => a.href.startsWith('javascript')).length"
        )
        == 0
    )
    reply.get_by_text("click me").click()
    reply.get_by_text("raw link").click()
    reply.get_by_text("overlay").click()
    ui.page.wait_for_timeout(300)  # a chance for anything injected to run
    assert ui.page.evaluate("window.__pwned") is None
    ui.shot("hostile markdown, inert")


def test_sessions_show_their_platform_and_can_be_filtered(make_ui: MakeUI, api: Api) -> None:
    ui = make_ui(DESKTOP)
    user = api.user()
    api.session(user, "From the terminal", platform="cli")
    api.session(user, "From a script")
    api.session(user, "From a bot", platform="slack-bot")
    ui.goto()
    ui.log_in(user.username, user.password)
    ui.new_chat("From the browser")
    titles = ui.chats.locator(".session-title")
    expect(titles).to_have_text(["From the browser", "From a bot", "From a script", "From the terminal"])
    expect(ui.chats.locator(".platform-badge")).to_have_text(["web", "slack-bot", "api", "cli"])
    filter_box = ui.page.get_by_label("Show")
    filter_box.select_option("cli")
    expect(titles).to_have_text(["From the terminal"])
    filter_box.select_option("slack-bot")
    expect(titles).to_have_text(["From a bot"])
    ui.shot("filtered by platform")
    filter_box.select_option("")
    expect(titles).to_have_count(4)
