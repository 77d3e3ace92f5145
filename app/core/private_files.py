"""DATA_DIR is owner-only: the directory, everything in it, and every file written there.

It holds the database files, the JWT secret and the database credentials, so no other local
account may read or change any of it. New files are created 0600 (whatever the umask), the
servers run with umask 077 (so the embedded database's own files are 0600 too), and a data
directory an older version left group- or world-readable is tightened at the next start.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

OWNER_ONLY_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
_GROUP_AND_OTHERS = 0o077


def secure_directory(directory: Path) -> int:
    """Create `directory` 0700 if missing, and take group and other permissions away from it
    and everything under it (symlinks are not followed). Returns how many entries changed."""
    directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    changed = _restrict(directory)
    for root, dirs, files in os.walk(directory):
        for name in (*dirs, *files):
            changed += _restrict(Path(root, name))
    if changed:
        log.warning(
            "took group and other permissions away from files in the data directory",
            extra={"data_dir": str(directory), "entries": changed},
        )
    return changed


def _restrict(path: Path) -> int:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return 0
    if stat.S_ISLNK(mode) or not mode & _GROUP_AND_OTHERS:
        return 0
    os.chmod(path, stat.S_IMODE(mode) & ~_GROUP_AND_OTHERS)
    return 1


def write_private_file(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, readable by the owner only from the first byte."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def open_private_append(path: Path) -> int:
    """A file descriptor appending to `path`, created 0600 if missing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return fd
