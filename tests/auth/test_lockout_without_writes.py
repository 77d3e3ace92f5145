"""Issue 19, row 18: a flood of wrong passwords at an account or address that is already
locked out is refused without a database write (it cost one write each, ~73 refusals a
second, and the owner's posts went from 23 to 471 ms p50)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection

from app.core.db import THROTTLES
from tests.conftest import StartApp
from tests.factories import make_user

WRITES = ("insert_one", "update_one", "update_many", "delete_one", "delete_many", "find_one_and_update")


def _count_throttle_writes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    writes: Counter[str] = Counter()
    for name in WRITES:
        real = getattr(AsyncCollection, name)

        def counted(self: AsyncCollection[Any], *args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            if self.name == THROTTLES:
                writes[_name] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(AsyncCollection, name, counted)
    return writes


async def test_refusing_a_locked_out_account_writes_nothing(
    start_app: StartApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start_app(login_max_failures=3)
    user = await make_user(server)
    wrong = {"username": user.username, "password": "not-the-password"}
    statuses = [(await server.post("/auths/login", data=wrong)).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    writes = _count_throttle_writes(monkeypatch)
    for _ in range(20):
        refused = await server.post("/auths/login", data=wrong)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert sum(writes.values()) == 0, writes
