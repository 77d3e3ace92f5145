"""Issue 19, row 12: an assistant message that makes marked throw (3,000 nested quotes) is shown
as plain text, and the rest of the page renders (it showed "Couldn't load messages" and hid
that page of messages for good)."""

from __future__ import annotations

import pytest

from tests.browser.harness import DESKTOP, Api
from tests.browser.test_chat_ui import MakeUI

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

NESTED_QUOTES = "> " * 3000 + "deep"


def test_a_message_marked_cannot_render_is_plain_text_and_the_rest_renders(make_ui: MakeUI, api: Api) -> None:
    ui = make_ui(DESKTOP)
    user = api.user()
    session = api.session(user, "Hostile markdown")
    api.message(user, session["_id"], "before", "user")
    api.message(user, session["_id"], NESTED_QUOTES, "assistant")
    api.message(user, session["_id"], "**after**", "assistant")
    ui.goto()
    ui.log_in(user.username, user.password)
    ui.open_chat("Hostile markdown")
    expect(ui.messages).to_have_count(3)
    expect(ui.messages.nth(0)).to_have_text("before")
    expect(ui.messages.nth(1)).to_contain_text("> > > ")
    expect(ui.messages.nth(1)).to_contain_text("deep")
    expect(ui.messages.nth(2).locator("strong")).to_have_text("after")
    expect(ui.page.get_by_text("Couldn't load messages")).to_have_count(0)
    ui.shot("unrenderable message as plain text")
