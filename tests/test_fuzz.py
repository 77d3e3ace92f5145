"""Schemathesis against the app's own OpenAPI, in-process over ASGI, authenticated as a real
user: every operation, zero 5xx, responses that conform to the schema.

`make test` runs FUZZ_EXAMPLES (default 10) examples per operation; `make fuzz` runs many more.
Failures it found are pinned below as named regression tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from pymongo import MongoClient
from schemathesis.checks import (
    allow_header_conformance,
    positive_data_acceptance,
    unsupported_method,
)
from schemathesis.python import asgi
from schemathesis.specs.openapi.schemas import OpenApiSchema

from app.core.config import Settings
from app.main import create_app
from tests.assistant.fake_upstream import FakeUpstream
from tests.conftest import TEST_JWT_SECRET

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
FUZZ_PASSWORD = "fuzz-password-123"


def _app_without_database() -> FastAPI:
    """The app, built at import time for its schema; the fixture below points it at the test
    database before the first call starts its lifespan (schemathesis runs the lifespan in its
    own event-loop thread)."""
    placeholder = Settings(
        _env_file=None,  # type: ignore[call-arg]
        mongodb_uri="mongodb://127.0.0.1:9/?directConnection=true",
        jwt_secret=TEST_JWT_SECRET,
        max_body_bytes=64 * 1024,
        register_max_per_ip=1_000_000,  # every request comes from one address here
        login_max_failures_per_ip=1_000_000,
    )
    return create_app(placeholder)


fuzz_app = _app_without_database()
# Event streams never end, so a fuzzed call would never return; tests/events covers them.
schema = schemathesis.openapi.from_dict(fuzz_app.openapi()).exclude(path_regex=r"/events$")
schema.app = fuzz_app
# An invalid body can be refused for its size before it is read: 413 is a rejection too (a
# batch of too many messages easily passes MAX_BODY_BYTES).
schema.config.checks.negative_data_rejection.expected_statuses.append("413")


@pytest.fixture(scope="module")
def fuzz_schema(mongodb_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenApiSchema]:
    """The app on its own database, with a model upstream (a fake one), so the model routes
    answer as configured rather than 503 "no model is configured"."""
    database_name = f"fuzz_{uuid.uuid4().hex[:12]}"
    with FakeUpstream() as upstream:
        fuzz_app.state.settings = fuzz_app.state.settings.model_copy(
            update={
                "mongodb_uri": SecretStr(mongodb_uri),
                "mongodb_db": database_name,
                "data_dir": tmp_path_factory.mktemp("fuzz"),
                "model_base_url": upstream.base_url,
            }
        )
        try:
            yield schema
        finally:
            asgi.shutdown_lifespans()
            with MongoClient(mongodb_uri) as client:
                client.drop_database(database_name)


@dataclass
class FuzzUser:
    headers: dict[str, str]
    session_id: str


@pytest.fixture
def fuzz_user(fuzz_schema: OpenApiSchema) -> FuzzUser:
    """A fresh user per operation (fuzzing logout or a password change ends the caller's
    token), with one session holding one message, so fuzzed calls also reach real data."""
    username = f"fuzz_{uuid.uuid4().hex[:8]}"
    credentials = {"username": username, "password": FUZZ_PASSWORD}
    assert fuzz_schema["/auths/register"]["POST"].Case(body=credentials).call().status_code == 201
    login = fuzz_schema["/auths/login"]["POST"].Case(body=credentials, media_type="application/x-www-form-urlencoded")
    response = login.call()
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    created = fuzz_schema["/chat/sessions"]["POST"].Case(body={"title": "fuzz"}).call(headers=headers)
    assert created.status_code == 201, created.text
    session_id = created.json()["_id"]
    message = {"content": "hello"}
    posted = fuzz_schema["/chat/sessions/{session_id}/messages"]["POST"].Case(
        path_parameters={"session_id": session_id}, body=message
    )
    assert posted.call(headers=headers).status_code == 201
    return FuzzUser(headers, session_id)


# Starlette answers 405 with the methods of the first route matching the path only; and a
# schema-valid value can rightly be refused with a documented 4xx (a forged page cursor, a
# wrong current password), which positive_data_acceptance counts as a failure.
EXCLUDED_CHECKS = [unsupported_method, allow_header_conformance, positive_data_acceptance]


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=os.environ.get("FUZZ_SEED") is None,
)
def test_api_conforms_to_its_schema(case: Any, fuzz_user: FuzzUser) -> None:
    case.headers = {**(case.headers or {}), **fuzz_user.headers}
    path_parameters = case.path_parameters or {}
    if "session_id" in path_parameters and len(str(path_parameters["session_id"])) % 2 == 0:
        path_parameters["session_id"] = fuzz_user.session_id  # half the examples hit a real session
    case.call_and_validate(excluded_checks=EXCLUDED_CHECKS)


# Regression tests for what the fuzzer found.


def test_authenticated_operations_document_401_and_503_regression() -> None:
    """Fuzz finding: every chat, account and admin route answered 401 (no or a revoked token)
    and can answer 503 (database down) without declaring either in the OpenAPI."""
    for path, operations in fuzz_app.openapi()["paths"].items():
        if not path.startswith(("/chat/", "/auths/", "/admin/")):
            continue
        for method, operation in operations.items():
            assert {"401", "503"} <= set(operation["responses"]), (method, path)


def test_chat_lists_document_400_for_a_forged_cursor_regression() -> None:
    """Fuzz finding: a made-up `cursor` answers 400, which the list operations did not declare."""
    paths = fuzz_app.openapi()["paths"]
    for path in ("/chat/sessions", "/chat/sessions/{session_id}/messages"):
        assert "400" in paths[path]["get"]["responses"], path


def test_non_utf8_json_body_is_a_documented_400_regression(fuzz_schema: OpenApiSchema, fuzz_user: FuzzUser) -> None:
    """Fuzz finding: a body that is not UTF-8 answers 400 (FastAPI's parse error), undeclared."""
    operation = fuzz_schema["/chat/sessions"]["POST"]
    assert "400" in fuzz_app.openapi()["paths"]["/chat/sessions"]["post"]["responses"]
    response = operation.Case(body={"title": "x"}).call(
        headers={**fuzz_user.headers, "Content-Type": "application/json"}, data=b"\xff\x1d\xfe"
    )
    assert response.status_code == 400
    assert response.json()["detail"]
