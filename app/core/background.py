"""Stopping background tasks (pollers, followers, sweepers) at shutdown without hanging it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


async def stop_within(task: asyncio.Task[Any], seconds: float) -> None:
    """Wait up to `seconds` for `task` to finish (its loop was told to stop between commands);
    past that, cancel it and go on without waiting. A task cancelled inside a driver command
    and then awaited can wait forever (a cancelled getMore left its stream's close waiting;
    a cancelled sweep hung a shutdown), so it is never awaited once cancelled: not with
    `await task`, nor with `asyncio.wait_for`, which cancels on its timeout and then waits."""
    _, pending = await asyncio.wait({task}, timeout=seconds)
    if pending:
        log.warning("a background task did not stop in time", extra={"task": task.get_name()})
        task.cancel()
