"""What the system says about another process: its state, its parent and its command line.

Read from /proc on Linux, from `ps` elsewhere (macOS): the embedded database's start uses it to
recognise a database a previous run left behind, and whether that run's app is still alive."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
PS_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class ProcessInfo:
    state: str  # one letter, as ps and /proc show it: "Z" for a zombie
    parent_pid: int
    command: str  # the arguments joined by spaces


def process_info(pid: int) -> ProcessInfo | None:
    """None when no such process exists (or it cannot be read)."""
    return _from_proc(pid) if (PROC / "self").exists() else _from_ps(pid)


def process_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a killed orphan may wait to be reaped)."""
    if not _exists(pid):
        return False
    info = process_info(pid)
    if info is None:  # reaped since the first look, or not readable: look again
        return _exists(pid)
    return info.state != "Z"


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _from_proc(pid: int) -> ProcessInfo | None:
    try:
        # The name in parentheses may hold spaces and ")": the fields after the last ")" do not.
        state, parent_pid = (PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()[:2]
        arguments = (PROC / str(pid) / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except (OSError, ValueError):
        return None
    return ProcessInfo(state, int(parent_pid), " ".join(os.fsdecode(a) for a in arguments))


def _from_ps(pid: int) -> ProcessInfo | None:
    try:
        shown = subprocess.run(  # -ww: never cut the command to the terminal's width
            ["ps", "-ww", "-o", "stat=", "-o", "ppid=", "-o", "args=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=PS_TIMEOUT_SECONDS,
        ).stdout.split(None, 2)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if len(shown) < 2 or not shown[1].isdigit():
        return None
    return ProcessInfo(shown[0][0], int(shown[1]), shown[2].strip() if len(shown) > 2 else "")
