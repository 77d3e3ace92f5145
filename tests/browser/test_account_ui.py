"""The account page (#/account) in real Chromium: API keys made, copied once, used, listed with
their last use and revoked; every chat exported and imported back (ours and ChatGPT's zip, with
progress and the report); the password changed; signing out everywhere. axe-core clean."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.browser.harness import DESKTOP, PHONE, UI, Api
from tests.factories import DEFAULT_PASSWORD
from tests.transfer.chatgpt_export import export_zip

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

MakeUI = Callable[..., UI]


def open_account(ui: UI) -> None:
    ui.show_chats()
    ui.page.get_by_role("link", name="account").click()
    expect(ui.page.get_by_role("heading", name="Account", exact=True)).to_be_visible()
    expect(ui.page.get_by_role("heading", name="API keys")).to_be_visible()


def test_api_keys_export_import_password_and_sign_out_everywhere(make_ui: MakeUI, api: Api, tmp_path: Path) -> None:
    user = api.user("account")
    session = api.session(user, "Kept chat")
    api.message(user, session["_id"], "Hello from before the export")
    other_login = api.token(user.username, user.password)
    ui = make_ui(DESKTOP)
    page = ui.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    ui.goto()
    ui.log_in(user.username, user.password)
    open_account(ui)
    expect(page.get_by_text("No API keys yet.")).to_be_visible()
    ui.shot("account page")
    ui.assert_accessible("account page")

    # An API key: wrong password first, then read-only for 30 days; the secret once, copied.
    form = page.get_by_role("form", name="New key")
    form.get_by_label("Name").fill("laptop CLI")
    form.get_by_label("Read only").check()
    form.get_by_label("Expires after").select_option("30")
    form.get_by_label("Your password").fill("not-my-password")
    ui.expect_http_error("POST", "/auths/api-keys", 400)
    form.get_by_role("button", name="Create key").click()
    expect(form.get_by_text("The current password is incorrect")).to_be_visible()
    form.get_by_label("Your password").fill(user.password)
    form.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("New API key")
    expect(secret).to_have_value(re.compile(r"^\S{20,}$"))
    key = secret.input_value()
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key
    keys = page.get_by_role("list", name="Your keys").get_by_role("listitem")
    expect(keys).to_have_count(1)
    expect(keys.first).to_contain_text("laptop CLI")
    expect(keys.first).to_contain_text("Read only")
    expect(keys.first).to_contain_text("Last used never")
    ui.shot("key created, shown once")
    ui.assert_accessible("key created")

    as_key = {"Authorization": f"Bearer {key}"}
    assert api.http.get("/chat/sessions", headers=as_key).status_code == 200
    assert api.http.post("/chat/sessions", json={"title": "x"}, headers=as_key).status_code == 403  # read only
    page.get_by_role("button", name="Done").click()
    expect(secret).to_be_hidden()
    page.reload()
    page.locator("#boot").wait_for(state="hidden")
    expect(keys.first).not_to_contain_text("Last used never")
    expect(page.get_by_label("New API key")).to_be_hidden()  # the secret is never shown again

    keys.first.get_by_role("button", name="Revoke laptop CLI").click()
    confirm = page.get_by_role("dialog", name="Revoke this key?")
    expect(confirm).to_contain_text("laptop CLI")
    ui.shot("revoke confirmation")
    confirm.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("No API keys yet.")).to_be_visible()
    assert api.http.get("/chat/sessions", headers=as_key).status_code == 401

    # Export everything, with the header's counts; then import ChatGPT's zip and our own file.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export all chats").click()
    download = download_info.value
    assert download.suggested_filename.startswith("chat-export-") and download.suggested_filename.endswith(".ndjson")
    exported = tmp_path / download.suggested_filename
    download.save_as(exported)
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert lines[0]["type"] == "export" and (lines[0]["sessions"], lines[0]["messages"]) == (1, 1)
    assert lines[2]["message"]["content"] == "Hello from before the export"
    expect(page.get_by_text(f"Downloaded {download.suggested_filename}")).to_be_visible()

    chatgpt = tmp_path / "chatgpt-export.zip"
    chatgpt.write_bytes(export_zip())
    importer = page.get_by_role("form", name="Import chats")
    importer.get_by_label("File").set_input_files(str(chatgpt))
    importer.get_by_role("button", name="Import").click()
    report = page.get_by_role("region", name="Import report")
    expect(report).to_contain_text("ChatGPT zip")
    expect(report).to_contain_text("Chats2 new, 0 already here")
    expect(report).to_contain_text("Messages7 new, 0 already here")
    expect(report).to_contain_text("Skipped 2 items")
    expect(report).to_contain_text("Lisbon day trip (message hidden): empty message")
    expect(page.get_by_text("Imported chatgpt-export.zip.")).to_be_visible()
    ui.show_chats()
    expect(ui.chats.get_by_text("Lisbon day trip")).to_be_visible()
    ui.shot("chatgpt import report")
    ui.assert_accessible("import report")

    importer.get_by_label("File").set_input_files(str(exported))
    importer.get_by_role("button", name="Import").click()
    expect(report).to_contain_text("Chat export")
    # A copy today; "already here" once imports know their own exports (issue 21).
    expect(report).to_contain_text(re.compile(r"Chats(1 new, 0|0 new, 1) already here"))
    expect(report).to_contain_text("Nothing was skipped.")

    not_a_file = tmp_path / "notes.txt"
    not_a_file.write_text("secret notes, not an export")
    importer.get_by_label("File").set_input_files(str(not_a_file))
    ui.expect_http_error("POST", "/chat/import", 422)
    importer.get_by_role("button", name="Import").click()
    expect(importer.get_by_role("alert")).to_contain_text("Not imported")
    expect(importer.get_by_role("alert")).not_to_contain_text("secret notes")  # the file's content is not echoed

    # The password: wrong current one, then changed; this page stays signed in.
    password = page.get_by_role("form", name="Password")
    password.get_by_label("Current password").fill("wrong-password")
    password.get_by_label("New password").fill("a-brand-new-password")
    ui.expect_http_error("POST", "/auths/password", 400)
    password.get_by_role("button", name="Change password").click()
    expect(password.get_by_text("The current password is incorrect")).to_be_visible()
    password.get_by_label("Current password").fill(DEFAULT_PASSWORD)
    password.get_by_role("button", name="Change password").click()
    expect(password.get_by_text("Password changed.")).to_be_visible()
    assert (
        api.http.post("/auths/login", data={"username": user.username, "password": DEFAULT_PASSWORD}).status_code == 401
    )
    assert api.http.get("/auths/me", headers={"Authorization": f"Bearer {other_login}"}).status_code == 401
    ui.shot("password changed")

    # Sign out everywhere: this page and another login both end.
    second = api.token(user.username, "a-brand-new-password")
    page.get_by_role("button", name="Sign out everywhere").click()
    page.get_by_role("dialog", name="Sign out everywhere?").get_by_role("button", name="Sign out everywhere").click()
    expect(ui.login_form.get_by_text("You have signed out everywhere.")).to_be_visible()
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('chat-ui.'))") == []
    assert api.http.get("/auths/me", headers={"Authorization": f"Bearer {second}"}).status_code == 401
    ui.shot("signed out everywhere")


def test_the_account_page_at_375px_dark(make_ui: MakeUI, api: Api) -> None:
    user = api.user("account")
    api.http.post(
        "/auths/api-keys",
        json={
            "name": "a key with a rather long name for a phone",
            "scopes": ["read", "write"],
            "current_password": user.password,
        },
        headers=user.headers,
    ).raise_for_status()
    ui = make_ui(PHONE, color_scheme="dark")
    ui.goto("/chat-ui/#/account")
    ui.assert_accessible("sign in at 375 px, dark")
    ui.log_in(user.username, user.password)
    expect(ui.page.get_by_role("heading", name="Account", exact=True)).to_be_visible()
    keys = ui.page.get_by_role("list", name="Your keys").get_by_role("listitem")
    expect(keys).to_have_count(1)
    expect(keys.first).to_contain_text("Read and write")
    ui.shot("account at 375 px, dark")
    ui.assert_accessible("account at 375 px, dark")
    keys.first.scroll_into_view_if_needed()
    ui.shot("account at 375 px, the key list")
    ui.page.get_by_role("heading", name="Sign out everywhere").scroll_into_view_if_needed()
    ui.shot("account at 375 px, the end of the page")
    assert ui.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
