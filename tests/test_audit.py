"""Issue 8, "operations": audit log lines for failed and locked logins, API keys, admin actions
and password changes, structured, with the request id, and never a secret."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import Document
from app.core.logging import JsonFormatter
from tests.conftest import StartApp
from tests.factories import make_admin, make_user

SECRETS = ("wrong-password-9", "a-new-password-1", "reset-by-admin-2")


def _events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records if record.name == "app.audit"]
    for line in lines:
        assert not any(secret in line for secret in SECRETS), line
    return [vars(record) for record in caplog.records if record.name == "app.audit"]


def _one(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    matching = [event for event in events if event["event"] == name]
    assert matching, f"no {name} in {[event['event'] for event in events]}"
    return matching[-1]


async def test_security_events_are_audited_without_secrets(
    client: AsyncClient, db: AsyncDatabase[Document], start_app: StartApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.audit")
    admin = await make_admin(client, db)
    user = await make_user(client)

    failed = await client.post(
        "/auths/login", data={"username": user.username, "password": SECRETS[0]}, headers={"X-Request-ID": "req-fail-1"}
    )
    assert failed.status_code == 401
    event = _one(_events(caplog), "login.failed")
    assert event["user_id"] == user.id and event["reason"] == "bad_credentials" and event["request_id"] == "req-fail-1"

    body = {"name": "k", "scopes": ["read"], "current_password": user.password}
    created = (await client.post("/auths/api-keys", json=body, headers=user.headers)).json()
    event = _one(_events(caplog), "api_key.created")
    assert event["key_id"] == created["_id"] and event["user_id"] == user.id and event["request_id"]
    assert created["key"] not in caplog.text and user.password not in caplog.text

    await client.delete(f"/auths/api-keys/{created['_id']}", headers=user.headers)
    assert _one(_events(caplog), "api_key.revoked")["key_id"] == created["_id"]

    change = {"current_password": user.password, "new_password": SECRETS[1]}
    assert (await client.post("/auths/password", json=change, headers=user.headers)).status_code == 204
    assert _one(_events(caplog), "password.changed")["user_id"] == user.id

    await client.patch(f"/admin/users/{user.id}", json={"disabled": True}, headers=admin.headers)
    event = _one(_events(caplog), "admin.user_disabled")
    assert event["admin"] == admin.id and event["user_id"] == user.id
    await client.patch(f"/admin/users/{user.id}", json={"disabled": False, "role": "admin"}, headers=admin.headers)
    assert _one(_events(caplog), "admin.role_changed")["role"] == "admin"
    await client.post(f"/admin/users/{user.id}/password", json={"new_password": SECRETS[2]}, headers=admin.headers)
    assert _one(_events(caplog), "admin.password_reset")["user_id"] == user.id
    await client.delete(f"/admin/users/{user.id}", headers=admin.headers)
    assert _one(_events(caplog), "admin.user_deleted")["user_id"] == user.id


async def test_a_lockout_is_audited(start_app: StartApp, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="app.audit")
    server = await start_app(login_max_failures=2, login_max_failures_per_ip=1000)
    user = await make_user(server)
    for _ in range(2):
        await server.post("/auths/login", data={"username": user.username, "password": SECRETS[0]})
    event = _one(_events(caplog), "login.locked")
    assert event["scope"] == "account_address" and event["account"] == user.username.lower()
    assert event["lockout_seconds"] > 0
