"""Live updates in the chat UI: what another client writes appears without a reload, in
every open tab; the chat list follows renames, new chats and deletions."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.browser.harness import DESKTOP, UI, Api

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

MakeUI = Callable[..., UI]


def _second_tab(ui: UI) -> UI:
    """Another tab of the same browser profile (same stored login), checked like the first."""
    page = ui.page.context.new_page()
    tab = UI(page, ui.base_url, ui.folder, mobile=ui.mobile)
    page.on("console", tab.on_console)
    page.on("pageerror", lambda error: tab.problems.append(f"uncaught exception: {error}"))
    page.on("requestfailed", tab.on_request_failed)
    page.on("response", tab.on_response)
    page.on("dialog", tab.on_dialog)
    return tab


def test_a_message_posted_through_the_api_appears_in_the_open_chat_in_both_tabs(make_ui: MakeUI, api: Api) -> None:
    ui = make_ui(DESKTOP)
    user = api.user()
    session = api.session(user, "Live")
    ui.goto()
    ui.log_in(user.username, user.password)
    ui.open_chat("Live")
    tab = _second_tab(ui)
    tab.goto(f"/chat-ui/#/s/{session['_id']}")
    tab.page.get_by_role("heading", name="Live", exact=True).wait_for()
    tab.page.locator("#conversation:not([aria-busy])").wait_for()

    api.message(user, session["_id"], "Hello from an agent", "assistant")
    for page in (ui, tab):
        expect(page.messages).to_have_text(["Hello from an agent"])
    ui.shot("agent message live")

    ui.send("Typed here")  # shown once here, though it also comes back on the stream
    expect(ui.messages).to_have_text(["Hello from an agent", "Typed here"])
    expect(tab.messages).to_have_text(["Hello from an agent", "Typed here"])
    ui.page.wait_for_timeout(500)
    expect(ui.messages).to_have_count(2)
    tab.shot("second tab")
    tab.assert_clean()


def test_the_chat_list_follows_renames_new_chats_and_deletions_made_elsewhere(make_ui: MakeUI, api: Api) -> None:
    ui = make_ui(DESKTOP)
    user = api.user()
    first = api.session(user, "First")
    api.session(user, "Second")
    ui.goto()
    ui.log_in(user.username, user.password)
    ui.open_chat("First")
    titles = ui.page.locator("#session-list .session-title")
    expect(titles).to_have_count(2)

    renamed = api.http.patch(f"/chat/sessions/{first['_id']}", json={"title": "Renamed"}, headers=user.headers)
    assert renamed.status_code == 200
    expect(titles.first).to_have_text("Renamed")
    expect(ui.page.get_by_role("heading", name="Renamed", exact=True)).to_be_visible()
    ui.shot("renamed elsewhere")

    third = api.session(user, "Third")
    expect(titles.first).to_have_text("Third")
    deleted = api.http.delete(f"/chat/sessions/{third['_id']}", headers=user.headers)
    assert deleted.status_code == 204
    expect(titles).to_have_text(["Renamed", "Second"])
    ui.shot("deleted elsewhere")
