"""Issue 21: a get-or-create followed by a refused write left an empty session behind
(`chat append NAME` with invalid metadata exited 1 and NAME stayed, empty). The session of a
name is now created in the same transaction as its first messages."""

from __future__ import annotations

import json

import httpx
import pytest
from chat_client import Client, UnprocessableEntity

from tests.integrations.conftest import Account
from tests.integrations.test_cli import chat


def _names(account: Account) -> list[str]:
    with httpx.Client(base_url=account.base_url, headers=account.headers) as rest:
        return [s.get("name") for s in rest.get("/chat/sessions").json()["items"]]


def test_chat_append_with_invalid_metadata_leaves_no_empty_session(account: Account) -> None:
    key = account.api_key(["read", "write"])
    refused = chat(account, key, "append", "trip", "hello", "--metadata", json.dumps({"$where": 1}))
    assert refused.returncode == 1 and "must not start with" in refused.stderr
    assert _names(account) == []

    stored = chat(account, key, "append", "trip", "hello", "--metadata", json.dumps({"run": 7}))
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.startswith("appended #1 (user) to trip")
    assert _names(account) == ["trip"]


def test_a_client_append_to_a_name_that_is_refused_creates_nothing(account: Account) -> None:
    with Client(account.base_url, api_key=account.api_key(["read", "write"])) as client:
        with pytest.raises(UnprocessableEntity):
            client.append_to("plans", [{"content": "ok"}, {"content": "bad", "metadata": {"a.b": 1}}])
        assert client.find_session("plans") is None
        first = client.append_to("plans", [{"content": "one"}], platform="agent", metadata={"team": "x"})
        again = client.append_to("plans", [{"content": "two"}], platform="ignored")
    assert first.created and not again.created
    assert again.session.id == first.session.id and again.session.platform == "agent"
    assert [m.seq for m in first.items + again.items] == [1, 2]
    assert again.session.metadata == {"team": "x"} and again.session.message_count == 2
