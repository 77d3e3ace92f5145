"""What the system says about another process, read from /proc and from `ps`."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from app.core import processes
from app.core.processes import ProcessInfo, process_running


@pytest.fixture(params=["proc", "ps"])
def inspector(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.param == "ps":
        monkeypatch.setattr(processes, "PROC", Path("/nonexistent-proc"))


@pytest.mark.usefixtures("inspector")
def test_a_zombie_reaped_between_the_two_looks_is_not_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stopped orphan is a zombie until its new parent reaps it, which may happen between the
    existence check and the read of its state: it then counted as running (CI failed on it)."""
    finished = subprocess.Popen(["true"])
    read_state = processes.process_info

    def reaped_first(pid: int) -> ProcessInfo | None:
        finished.wait()  # the reaper gets there between the two looks
        return read_state(pid)

    monkeypatch.setattr(processes, "process_info", reaped_first)
    assert not process_running(finished.pid)


@pytest.mark.usefixtures("inspector")
def test_a_running_process_and_a_zombie() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert process_running(sleeper.pid)
        sleeper.kill()
        deadline = time.monotonic() + 10
        while (info := processes.process_info(sleeper.pid)) is not None and info.state != "Z":
            assert time.monotonic() < deadline, info
            time.sleep(0.01)
        assert info is not None, "a zombie until we reap it"
        assert not process_running(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not process_running(sleeper.pid)
