"""The pieces the browser tests share: the REST API as another client, and `UI`, a page that
records every problem the browser reports and takes numbered screenshots."""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import httpx

from tests.factories import DEFAULT_PASSWORD, unique_username
from tests.factories import TestUser as ApiUser

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Page, Request, Response

AXE_SOURCE = Path(__file__).with_name("vendor") / "axe.min.js"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}


class Api:
    """The REST API, as another client of the same server would use it."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def user(self, prefix: str = "ui") -> ApiUser:
        username = unique_username(prefix)
        response = self.http.post("/auths/register", json={"username": username, "password": DEFAULT_PASSWORD})
        assert response.status_code == 201, response.text
        return ApiUser(response.json()["_id"], username, DEFAULT_PASSWORD, self.token(username, DEFAULT_PASSWORD))

    def token(self, username: str, password: str) -> str:
        response = self.http.post("/auths/login", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def session(self, user: ApiUser, title: str, **fields: Any) -> dict[str, Any]:
        """A new session; `fields` may give its platform, name and metadata."""
        response = self.http.post("/chat/sessions", json={"title": title, **fields}, headers=user.headers)
        assert response.status_code == 201, response.text
        session: dict[str, Any] = response.json()
        return session

    def message(
        self, user: ApiUser, session_id: str, content: str, role: str = "user", metadata: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        response = self.http.post(
            f"/chat/sessions/{session_id}/messages",
            json={"content": content, "role": role, "metadata": metadata or {}},
            headers=user.headers,
        )
        assert response.status_code == 201, response.text
        message: dict[str, Any] = response.json()
        return message


_REPLY_STREAM = re.compile(r"^/chat/sessions/[0-9a-f]{24}/(messages|replies)$")


def _is_reply_stream(method: str, path: str, query: str) -> bool:
    """A reply the UI asked for with its text streamed in the response (replystream.js)."""
    return method == "POST" and query == "stream=true" and _REPLY_STREAM.match(path) is not None


@dataclass
class Allowance:
    """One HTTP failure a test causes on purpose: `status` None means a network failure."""

    method: str
    path: str
    status: int | None
    seen_console: bool = False
    seen_event: bool = False


@dataclass
class UI:
    page: Page
    base_url: str
    folder: Path
    mobile: bool
    problems: list[str] = field(default_factory=list)
    allowances: list[Allowance] = field(default_factory=list)
    shots: int = 0

    def goto(self, path: str = "/chat-ui/") -> None:
        self.page.goto(self.base_url + path)
        self.page.locator("#boot").wait_for(state="hidden")

    def shot(self, step: str) -> None:
        self.shots += 1
        name = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
        self.page.screenshot(path=str(self.folder / f"{self.shots:02d}-{name}.png"), animations="disabled")

    def expect_http_error(self, method: str, path: str, status: int | None) -> None:
        """Allow, once, the failure of `method path` with `status` (None: network error)."""
        self.allowances.append(Allowance(method, path, status))

    # -- event handlers --

    def _allowance(self, path: str, status: int | None, *, console: bool, method: str | None = None) -> bool:
        for allowance in self.allowances:
            if allowance.path != path or allowance.status != status:
                continue
            if method is not None and allowance.method != method:
                continue
            if console and not allowance.seen_console:
                allowance.seen_console = True
                return True
            if not console and not allowance.seen_event:
                allowance.seen_event = True
                return True
        return False

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        text = message.text
        path = urlparse(message.location.get("url", "")).path
        if text.startswith("Failed to load resource"):
            status_match = re.search(r"status of (\d{3})", text)
            status = int(status_match.group(1)) if status_match else None
            if self._allowance(path, status, console=True):
                return
        self.problems.append(f"console error: {text} ({message.location.get('url')})")

    def on_request_failed(self, request: Request) -> None:
        url = urlparse(request.url)
        path = url.path
        if path == "/chat/events" and "ERR_ABORTED" in (request.failure or ""):
            return  # the UI ends its live stream on reload, navigation and logout by aborting it
        if _is_reply_stream(request.method, path, url.query) and "ERR_ABORTED" in (request.failure or ""):
            # Chromium reports a reply streamed in a POST's response as aborted once the page
            # has read it to its end through a stream reader (or left it on a reload); a
            # stream that really drops shows in the reply the test checks.
            return
        if self._allowance(path, None, console=False, method=request.method):
            return
        self.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def on_response(self, response: Response) -> None:
        if response.status < 500:
            return
        path = urlparse(response.url).path
        if self._allowance(path, response.status, console=False, method=response.request.method):
            return
        self.problems.append(f"server error: {response.status} {response.request.method} {response.url}")

    def on_dialog(self, dialog: Any) -> None:
        self.problems.append(f"unexpected JavaScript dialog: {dialog.type} {dialog.message!r}")
        with suppress(Exception):
            dialog.dismiss()

    def assert_clean(self) -> None:
        assert not self.problems, "browser problems:\n" + "\n".join(self.problems)

    def assert_accessible(self, step: str) -> None:
        """axe-core (vendored) finds no WCAG 2 A/AA violation on the page as it is now. Injected
        with `evaluate`, which the page's Content-Security-Policy does not govern."""
        if not self.page.evaluate("typeof window.axe === 'object'"):
            self.page.evaluate(AXE_SOURCE.read_text())
        violations = self.page.evaluate(
            """async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}))
                .violations.map(v => `${v.id} (${v.impact}): ${v.help}: ` +
                    v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' ' + n.failureSummary).join(' | '))"""
        )
        assert not violations, f"axe-core at {step!r}:\n" + "\n".join(violations)

    # -- steps a person takes, by role and label --

    @property
    def login_form(self) -> Any:
        return self.page.get_by_role("form", name="Sign in")

    @property
    def chats(self) -> Any:
        return self.page.get_by_role("navigation", name="Your chats")

    @property
    def composer(self) -> Any:
        return self.page.get_by_role("textbox", name="Message")

    @property
    def messages(self) -> Any:
        return self.page.locator("#message-list .message-text")

    def spoil_stored_tokens(self, *, expire: bool = False, access: bool = False, refresh: bool = False) -> None:
        """Change the tokens the UI keeps, as time or the server would: let the access token
        expire, or make the server refuse the access or the refresh token."""
        self.page.evaluate(
            """({expire, access, refresh}) => {
                const auth = JSON.parse(localStorage.getItem('chat-ui.auth'));
                if (expire) auth.expiresAt = Date.now() - 1000;
                if (access) auth.accessToken = 'spoiled.' + auth.accessToken;
                if (refresh) auth.refreshToken = 'spoiled.' + auth.refreshToken;
                localStorage.setItem('chat-ui.auth', JSON.stringify(auth));
            }""",
            {"expire": expire, "access": access, "refresh": refresh},
        )

    def log_in(self, username: str, password: str) -> None:
        self.login_form.get_by_label("Username").fill(username)
        self.login_form.get_by_label("Password").fill(password)
        self.login_form.get_by_role("button", name="Sign in").click()
        self.page.locator("#app-view").wait_for(state="visible")

    def show_chats(self) -> None:
        """On a phone the chat list hides behind the menu button."""
        menu = self.page.locator("#menu-button")
        if self.mobile and menu.get_attribute("aria-expanded") != "true":
            menu.click()
            self.chats.wait_for(state="visible")

    def open_chat(self, title: str) -> None:
        self.show_chats()
        title_span = self.page.locator(".session-title").get_by_text(title, exact=True)
        self.chats.get_by_role("link").filter(has=title_span).click()
        self.page.get_by_role("heading", name=title, exact=True).wait_for()
        self.page.locator("#conversation:not([aria-busy])").wait_for()

    def new_chat(self, title: str) -> None:
        self.show_chats()
        self.page.get_by_role("button", name="New chat").first.click()
        dialog = self.page.get_by_role("dialog", name="New chat")
        dialog.get_by_label("Title").fill(title)
        dialog.get_by_role("button", name="Create").click()
        self.page.get_by_role("heading", name=title, exact=True).wait_for()

    def send(self, text: str) -> None:
        """Enter sends on desktop; on a touch screen Enter is a new line and Send sends."""
        count = self.messages.count()
        self.composer.fill(text)
        if self.mobile:
            self.page.get_by_role("button", name="Send").click()
        else:
            self.composer.press("Enter")
        self.page.wait_for_function("n => document.querySelectorAll('#message-list .message').length > n", arg=count)
