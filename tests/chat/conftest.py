"""Fixtures shared by the chat tests."""

from __future__ import annotations

import pytest

from app.chat import session_list


@pytest.fixture(params=["one query", "windows"])
def read_strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a listing test both ways list_sessions reads: the whole remainder in one query (few
    sessions) and widening windows of activity time (many sessions)."""
    if request.param == "windows":
        monkeypatch.setattr(session_list, "READ_WHOLE_REMAINDER_UP_TO", -1)
    return str(request.param)
