"""The client package (clients/python, `chat_client`) against a live server: get-or-create,
appends (split into batches), pagination, the exception tree, retries with one Idempotency-Key,
logins that refresh and never loop, and following a session across a dropped connection."""

from __future__ import annotations

import threading

import httpx
import pytest
from chat_client import (
    AsyncClient,
    AuthenticationFailed,
    Client,
    Conflict,
    MessageIn,
    NotFound,
    PermissionDenied,
    UnprocessableEntity,
)

from tests.factories import wait_for_search_index_over_http
from tests.integrations.conftest import Account
from tests.integrations.flaky import AsyncFlakyTransport, Faults, FlakyTransport, once


def is_post_to(suffix: str) -> object:
    return lambda request: request.method == "POST" and request.url.path.endswith(suffix)


def test_get_or_create_append_many_in_batches_and_every_page(account: Account) -> None:
    with Client(account.base_url, api_key=account.api_key(["read", "write"])) as chat:
        session = chat.session(name="nightly", platform="cli", metadata={"origin": "test"})
        assert chat.session(name="nightly", platform="other") == session
        assert session.platform == "cli" and session.metadata == {"origin": "test"}
        first = chat.append(session, "hello", metadata={"run": 1})
        assert (first.seq, first.role, first.metadata) == (1, "user", {"run": 1})
        turn = [MessageIn(role="assistant", content=f"m{i}") for i in range(149)] + [{"role": "tool", "content": "x"}]
        stored = chat.append_many(session.id, turn)
        assert [m.seq for m in stored] == list(range(2, 152))
        walked = list(chat.messages(session, page_size=40))
        assert [m.seq for m in walked] == list(range(1, 152))
        assert [m.content for m in walked[1:3]] == ["m0", "m1"] and walked[-1].role == "tool"
        assert [m.seq for m in chat.messages(session, after_seq=149)] == [150, 151]

        for i in range(3):
            chat.session(name=f"web-{i}", platform="web")
        assert [s.name for s in chat.sessions(platform="web", page_size=2)] == ["web-2", "web-1", "web-0"]
        assert chat.find_session("nightly") == chat.get_session(session.id).model_copy(update={})
        assert chat.find_session("nobody") is None


def test_errors_are_one_tree_mapped_from_status_codes(account: Account) -> None:
    with Client(account.base_url, api_key=account.api_key(["read", "write"])) as chat:
        with pytest.raises(NotFound) as missing:
            chat.append("0" * 24, "into the void")
        assert missing.value.status_code == 404 and missing.value.detail == "Chat session not found"
        session = chat.session(name="errors")
        with pytest.raises(UnprocessableEntity) as invalid:
            chat.append(session, "   ")
        assert "content" in str(invalid.value)
        chat.session(name="taken")
        with pytest.raises(Conflict):
            chat.update_session(session, name="taken")
    with Client(account.base_url, api_key=account.api_key(["read"])) as reader:
        assert reader.get_session(session.id).name == "errors"
        with pytest.raises(PermissionDenied):
            reader.append(session, "read-only")


def test_a_lost_answer_and_a_503_are_retried_with_the_same_key_and_stored_once(account: Account) -> None:
    faults = Faults(lose_response=once(is_post_to("/messages")), answer_503=once(is_post_to("/batch")))
    http = httpx.Client(transport=FlakyTransport(faults))
    with Client(account.base_url, api_key=account.api_key(["read", "write"]), http_client=http) as chat:
        session = chat.session(name="flaky")
        message = chat.append(session, "exactly once")
        batch = chat.append_many(session, [{"content": "a"}, {"content": "b"}])
        assert [message.seq, *(m.seq for m in batch)] == [1, 2, 3]
        assert chat.get_session(session).message_count == 3
    posts = [r for r in faults.seen if r.url.path.endswith("/messages")]
    assert len(posts) == 2 and posts[0].headers["Idempotency-Key"] == posts[1].headers["Idempotency-Key"]
    batches = [r for r in faults.seen if r.url.path.endswith("/batch")]
    assert len(batches) == 2 and batches[0].headers["Idempotency-Key"] == batches[1].headers["Idempotency-Key"]
    http.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_password_login_refreshes_before_expiry_and_a_refused_refresh_logs_in_once(account: Account) -> None:
    faults = Faults()
    http = httpx.Client(transport=FlakyTransport(faults))
    with Client(account.base_url, username=account.username, password=account.password, http_client=http) as chat:
        clock = Clock()
        chat._credentials._clock = clock
        assert chat.me().username == account.username
        clock.now += 15 * 60 - 30  # within the last minute of the access token's life
        chat.me()
        assert [p for p in faults.paths() if p.startswith("/auths/")] == ["/auths/login", "/auths/me"] + [
            "/auths/refresh",
            "/auths/me",
        ]
        faults.seen.clear()
        chat._credentials.refresh_token = "crt_refused"
        clock.now += 15 * 60
        chat.me()
        assert faults.paths() == ["/auths/refresh", "/auths/login", "/auths/me"]
    http.close()


def test_a_wrong_password_fails_at_once_without_looping(account: Account) -> None:
    faults = Faults()
    http = httpx.Client(transport=FlakyTransport(faults))
    chat = Client(account.base_url, username=account.username, password="not-the-password", http_client=http)
    with chat, pytest.raises(AuthenticationFailed):
        next(chat.sessions())
    assert faults.paths() == ["/auths/login"]
    http.close()


def test_follow_resumes_after_a_dropped_connection_with_no_gap_or_repeat(account: Account) -> None:
    cuts = {"left": 1}

    def cut_first_stream(request: httpx.Request) -> int | None:
        if request.url.path.endswith("/events") and cuts["left"]:
            cuts["left"] -= 1
            return 2
        return None

    faults = Faults(cut_stream_after_events=cut_first_stream)
    key = account.api_key(["read", "write"])
    http = httpx.Client(transport=FlakyTransport(faults))
    with (
        Client(account.base_url, api_key=key, http_client=http) as follower,
        Client(account.base_url, api_key=key) as writer,
    ):
        session = writer.session(name="followed")
        writer.append_many(session, [{"content": f"before {i}"} for i in range(3)])
        received = []
        for message in follower.follow(session, after_seq=0):
            received.append(message)
            if len(received) == 3:
                writer.append(session, "live 1")
                writer.append(session, "live 2")
            if len(received) == 5:
                break
    assert [m.seq for m in received] == [1, 2, 3, 4, 5]
    assert [m.content for m in received[3:]] == ["live 1", "live 2"]
    streams = [r for r in faults.seen if r.url.path.endswith("/events")]
    assert [r.url.params["after_seq"] for r in streams] == ["0", "2"]
    http.close()


def test_follow_ends_when_the_session_is_deleted(account: Account) -> None:
    key = account.api_key(["read", "write"])
    with Client(account.base_url, api_key=key) as chat:
        session = chat.session(name="short-lived")
        timer = threading.Timer(1.0, chat.delete_session, args=[session.id])
        timer.start()
        assert list(chat.follow(session)) == []
        timer.join()


async def test_the_async_client_does_the_same_natively(account: Account) -> None:
    cuts = {"left": 1}

    def cut_first_stream(request: httpx.Request) -> int | None:
        if request.url.path.endswith("/events") and cuts["left"]:
            cuts["left"] -= 1
            return 1
        return None

    faults = Faults(lose_response=once(is_post_to("/batch")), cut_stream_after_events=cut_first_stream)
    http = httpx.AsyncClient(transport=AsyncFlakyTransport(faults))
    async with AsyncClient(
        account.base_url, username=account.username, password=account.password, http_client=http
    ) as chat:
        session = await chat.session(name="async", platform="agent")
        assert (await chat.session(name="async")).id == session.id
        stored = await chat.append_many(session, [{"content": f"m{i}"} for i in range(205)])
        assert [m.seq for m in stored] == list(range(1, 206))
        assert [m.seq async for m in chat.messages(session, page_size=100)] == list(range(1, 206))
        assert [s.id async for s in chat.sessions(platform="agent")] == [session.id]
        followed = []
        async for message in chat.follow(session, after_seq=203):
            followed.append(message.seq)
            if len(followed) == 2:
                await chat.append(session, "live")
            if len(followed) == 3:
                break
        assert followed == [204, 205, 206]
        await chat.clear_messages(session)
        assert (await chat.get_session(session)).message_count == 0
    await http.aclose()


async def test_async_search_walks_every_page(account: Account) -> None:
    key = account.api_key(["read", "write"])
    async with AsyncClient(account.base_url, api_key=key) as client:
        session = await client.session(name="async-haystack")
        await client.append_many(session, [{"content": f"pin {i}"} for i in range(7)])
        wait_for_search_index_over_http(account.base_url)  # search is built behind the writes
        hits = [hit async for hit in client.search("pin", session=session, page_size=3)]
    assert [hit.message.seq for hit in hits if hit.message] == list(range(7, 0, -1))
