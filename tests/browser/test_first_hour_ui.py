"""What a new user trips over in the chat view, in real Chromium: a search hit that scrolled the
whole page, table headers broken mid-word on a phone, a welcome that asks to pick from an empty
list, and long tool results. axe-core clean at desktop size and at 375 px."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.browser.harness import DESKTOP, PHONE, UI, Api

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

MakeUI = Callable[..., UI]
VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "375px"])
WIDE_TABLE = """Forecast:

| Temperature | Precipitation | Humidity | Visibility | Wind |
|---|---|---|---|---|
| 21 | 0 | 40 | 10 | 12 |
"""
LONG_RESULT = "\n".join(f"line {number}: ok" for number in range(1, 31))


@VIEWPORTS
def test_a_search_hit_scrolls_the_messages_not_the_page(make_ui: MakeUI, api: Api, viewport: dict[str, int]) -> None:
    user = api.user("hit")
    session = api.session(user, "Long notes")
    contents = [f"filler note number {i}" for i in range(1, 101)]
    contents[29] = "The quokka lives on Rottnest Island."  # seq 30
    batch = {"messages": [{"content": text} for text in contents]}
    response = api.http.post(f"/chat/sessions/{session['_id']}/messages/batch", json=batch, headers=user.headers)
    assert response.status_code == 201, response.text
    ui = make_ui(viewport)
    ui.goto()
    ui.log_in(user.username, user.password)
    ui.show_chats()
    ui.page.get_by_role("searchbox", name="Search your chats").fill("quokka")
    ui.page.get_by_role("region", name="Search results").get_by_role("link").filter(has_text="Long notes").click()
    found = ui.page.locator('#message-list .message[data-seq="30"]')
    expect(found).to_be_in_viewport()
    ui.shot("opened at the hit")
    page_scroll = ui.page.evaluate("[document.scrollingElement.scrollTop, window.scrollY]")
    assert page_scroll == [0, 0], "the page itself does not scroll"
    assert ui.page.evaluate("document.scrollingElement.scrollHeight") <= viewport["height"], "no band below the app"
    expect(ui.page.get_by_role("heading", name="Long notes", exact=True)).to_be_in_viewport()
    assert ui.page.locator(".chat-head").evaluate("el => el.getBoundingClientRect().top") == 0
    ui.assert_accessible("opened at a search hit")


@VIEWPORTS
def test_tables_tool_results_and_the_composer(make_ui: MakeUI, api: Api, viewport: dict[str, int]) -> None:
    user = api.user("table")
    session = api.session(user, "Tables and tools")
    api.message(user, session["_id"], WIDE_TABLE, "assistant")
    api.message(user, session["_id"], LONG_RESULT, "tool", metadata={"name": "run_checks", "tool_call_id": "c1"})
    ui = make_ui(viewport)
    ui.goto()
    ui.log_in(user.username, user.password)
    ui.open_chat("Tables and tools")
    headers = ui.page.locator(".markdown th")
    expect(headers).to_have_text(["Temperature", "Precipitation", "Humidity", "Visibility", "Wind"])
    lines_per_header = headers.evaluate_all(
        """cells => cells.map(cell => {
            const range = document.createRange();
            range.selectNodeContents(cell);
            return range.getClientRects().length;
        })"""
    )
    assert lines_per_header == [1] * 5, f"each one-word header stays on one line ({lines_per_header})"
    assert ui.page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], (
        "the table scrolls, not the page"
    )

    tool = ui.page.locator(".message-tool details")
    expect(tool.locator("summary")).to_have_text("Tool · run_checks: line 1: ok")
    tool.locator("summary").click()
    expect(tool.locator(".message-text")).to_have_text(LONG_RESULT)  # every line, not only the first
    expect(tool.locator(".message-metadata")).to_have_count(0)  # its name is shown; its call id is not worth it
    ui.shot("a wide table and a long tool result")
    ui.assert_accessible("a wide table and a long tool result")


def test_the_welcome_of_an_empty_account_does_not_ask_to_pick_a_chat(make_ui: MakeUI, api: Api) -> None:
    user = api.user("empty")
    ui = make_ui(DESKTOP)
    ui.goto()
    ui.log_in(user.username, user.password)
    welcome = ui.page.locator("#welcome")
    expect(welcome).to_contain_text("You have no chats yet")
    expect(welcome).not_to_contain_text("Pick a chat")
    ui.shot("welcome with no chats")
    ui.assert_accessible("welcome with no chats")
    welcome.get_by_role("link", name="Import chats").click()
    expect(ui.page.get_by_role("form", name="Import chats")).to_be_visible()
    ui.page.go_back()
    expect(welcome).to_contain_text("You have no chats yet")
    api.session(user, "The first one")
    ui.page.reload()
    expect(welcome).to_contain_text("Pick a chat from the list, or start a new one.")
    expect(welcome.get_by_role("link", name="Import chats")).to_be_hidden()
