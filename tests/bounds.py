"""Measuring a bound: a process's peak resident memory (from /proc) since a reset, and time.

In-process tests (ASGI) measure this process, which is the server; tests of a real server
process pass its pid. Writing 5 to /proc/<pid>/clear_refs resets the peak (VmHWM) to the
current RSS (Linux 4.0 and later)."""

from __future__ import annotations

import ctypes
import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

MB = 1024 * 1024


def _status_kb(field: str, pid: int | str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


@dataclass
class Cost:
    growth_mb: float = 0.0  # peak RSS during the block, above the RSS before it
    seconds: float = 0.0


@contextmanager
def measured(pid: int | str = "self") -> Iterator[Cost]:
    """The peak RSS growth and the time of the block. In this process, what earlier tests
    freed is first given back to the system, so that it cannot hide the block's growth."""
    if pid == "self":
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")
    before = _status_kb("VmRSS", pid)
    cost = Cost()
    started = time.perf_counter()
    yield cost
    cost.seconds = time.perf_counter() - started
    cost.growth_mb = (_status_kb("VmHWM", pid) - before) / 1024
