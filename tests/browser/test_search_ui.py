"""The search box in real Chromium: highlighted snippets built as text, and a hit that opens
its chat scrolled to the message (the page holding its seq, far from the newest)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.browser.harness import DESKTOP, UI, Api
from tests.factories import wait_for_search_index_over_http

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

MakeUI = Callable[..., UI]


def test_search_finds_old_messages_and_opens_the_chat_at_them(make_ui: MakeUI, api: Api) -> None:
    user = api.user("search")
    session = api.session(user, "Wildlife notes")
    other = api.session(user, "Shopping")
    contents = [f"filler note number {i}" for i in range(1, 201)]
    contents[36] = "The <b>quokka</b> lives on Rottnest Island; Quokkas smile."  # seq 37
    for start in range(0, 200, 100):
        batch = {"messages": [{"content": text} for text in contents[start : start + 100]]}
        response = api.http.post(f"/chat/sessions/{session['_id']}/messages/batch", json=batch, headers=user.headers)
        assert response.status_code == 201, response.text
    api.message(user, other["_id"], "buy quokka plush toy")
    wait_for_search_index_over_http(str(api.http.base_url))

    ui = make_ui(DESKTOP)
    ui.goto()
    ui.log_in(user.username, user.password)
    search = ui.page.get_by_role("searchbox", name="Search your chats")
    search.fill("QUOKKA isl")
    results = ui.page.get_by_role("region", name="Search results")
    hit = results.get_by_role("link").filter(has_text="Wildlife notes")
    expect(hit).to_be_visible()
    expect(results.get_by_role("link")).to_have_count(1)  # the plush toy has no "isl…" word
    expect(hit.locator("mark")).to_have_text(["quokka", "Island"])
    expect(hit).to_contain_text("The <b>quokka</b> lives")  # markup in a message stays text
    expect(ui.chats).to_be_hidden()
    ui.shot("search results with highlights")

    hit.click()
    expect(ui.page).to_have_url(re.compile(rf"#/s/{session['_id']}/m/37$"))
    found = ui.page.locator('#message-list .message[data-seq="37"]')
    expect(found).to_have_class(re.compile("message-found"))
    expect(found).to_be_in_viewport()
    expect(ui.page.locator('#message-list .message[data-seq="200"]')).to_have_count(0)
    ui.shot("chat opened at the found message")

    ui.page.locator("#message-scroller").evaluate("node => { node.scrollTop = 0; }")
    expect(ui.page.locator('#message-list .message[data-seq="1"]')).to_be_attached()
    newest = ui.page.locator('#message-list .message[data-seq="200"]')
    for _ in range(10):  # each scroll to the end loads the next page
        ui.page.locator("#message-scroller").evaluate("node => { node.scrollTop = node.scrollHeight; }")
        ui.page.wait_for_timeout(150)
        if newest.count():
            break
    expect(newest).to_be_attached()
    seqs = ui.page.locator("#message-list .message").evaluate_all("nodes => nodes.map(n => Number(n.dataset.seq))")
    assert seqs == sorted(set(seqs))

    search.fill("")
    expect(ui.chats).to_be_visible()
    expect(results).to_be_hidden()
    search.fill("nothing like this")
    expect(results.get_by_text("No matches.")).to_be_visible()
    ui.shot("no matches")
