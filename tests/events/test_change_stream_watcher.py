"""The change stream follower when the database cannot resume it: every subscriber is reset
once the stream is open again (from then on nothing is missed), never a silent gap."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from pymongo.errors import OperationFailure

from app.core.change_stream import ChangeStreamWatcher
from app.core.changes import RESET, ChangeHub

HISTORY_LOST = 286


class _Stream:
    def __init__(self, watcher: ChangeStreamWatcher) -> None:
        self.watcher = watcher
        self.alive = True
        self.resume_token = {"_data": "fresh"}

    async def __aenter__(self) -> _Stream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def try_next(self) -> None:
        self.watcher.stop.set()  # one empty batch, then stop
        return None


class _Db:
    """watch() fails as a database that pruned the history, then opens."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.watcher: ChangeStreamWatcher | None = None

    async def watch(self, pipeline: object, **options: Any) -> _Stream:
        self.calls.append(options.get("resume_after"))
        if len(self.calls) == 1:
            raise OperationFailure("resume point no longer in the oplog", code=HISTORY_LOST)
        assert self.watcher is not None
        return _Stream(self.watcher)


async def test_history_lost_resets_every_subscriber_once_the_stream_reopens() -> None:
    hub = ChangeHub()
    db = _Db()
    watcher = ChangeStreamWatcher(SimpleNamespace(db=db), hub, ["messages"])  # type: ignore[arg-type]
    db.watcher = watcher
    watcher.resume_token = {"_data": "old"}
    subscriptions = [hub.subscribe("alice"), hub.subscribe("bob")]
    await asyncio.wait_for(watcher.run(), 10)
    assert db.calls == [{"_data": "old"}, None], "then it starts again from the present"
    assert [s.queue.get_nowait() for s in subscriptions] == [RESET, RESET]
    assert hub.subscriber_count == 0
