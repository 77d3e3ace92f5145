"""One real `chat-server` process for the integration tests: the client package, the `chat`
command, the LangChain history and the MCP server are all driven over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.factories import DEFAULT_PASSWORD, unique_username
from tests.server_process import ServerProcess


@dataclass
class Account:
    base_url: str
    username: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def api_key(self, scopes: list[str]) -> str:
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            body = {"name": "-".join(scopes), "scopes": scopes, "current_password": self.password}
            response = http.post("/auths/api-keys", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        key: str = response.json()["key"]
        return key


@pytest.fixture(scope="package")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Every test registers its own account from 127.0.0.1: more than REGISTER_MAX_PER_IP's default 20 an hour.
    env = {"LOG_LEVEL": "WARNING", "REGISTER_MAX_PER_IP": "1000"}
    server = ServerProcess(tmp_path_factory.mktemp("integrations") / "data", env=env).start()
    try:
        yield server.base_url
    finally:
        server.stop()


def new_account(base_url: str) -> Account:
    username = unique_username("agent")
    with httpx.Client(base_url=base_url, timeout=30) as http:
        registered = http.post("/auths/register", json={"username": username, "password": DEFAULT_PASSWORD})
        assert registered.status_code == 201, registered.text
        tokens = http.post("/auths/login", data={"username": username, "password": DEFAULT_PASSWORD}).json()
    return Account(base_url, username, DEFAULT_PASSWORD, tokens["access_token"])


@pytest.fixture
def account(live_url: str) -> Account:
    return new_account(live_url)
