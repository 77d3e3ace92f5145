"""Before anything starts: DATA_DIR must be a directory this process can create and write,
or the server exits with one sentence saying so (a container whose volume belongs to another
user would otherwise die in a traceback from deep inside the database start-up)."""

from __future__ import annotations

import os
import pwd
import tempfile
from pathlib import Path

from app.core.private_files import PRIVATE_DIR_MODE


def _who() -> str:
    uid = os.getuid()
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def data_dir_problem(data_dir: Path) -> str | None:
    """None when `data_dir` exists (or can be made) and a file can be written in it; otherwise
    what is wrong and how to fix it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return (
            f"DATA_DIR {data_dir} is not a writable directory for {_who()}: {reason}. "
            "Give this user its own directory (in a container: a named volume, or a host directory "
            "owned by the image's user, e.g. `chown 10001 DIR`), or set DATA_DIR to one."
        )
    return None
