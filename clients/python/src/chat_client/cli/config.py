"""The `chat` command's config file: where `chat login` keeps the server and the API key it made.

`$XDG_CONFIG_HOME/chat/config.toml` (default `~/.config/chat/config.toml`; `%APPDATA%\\chat\\`
on Windows), owner-only (0600 in a 0700 directory): it holds a secret. Written whole to a
temporary file and renamed over the old one, so a crash never leaves half a file.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "config.toml"


class ConfigError(ValueError):
    """The config file exists but cannot be used (the message names it)."""


@dataclass(frozen=True)
class Saved:
    url: str
    api_key: str
    api_key_id: str
    username: str


def config_dir() -> Path:
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "chat"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "chat"


def config_path() -> Path:
    return config_dir() / FILE_NAME


def load() -> Saved | None:
    import tomllib  # only when a command runs, not for --help

    path = config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return Saved(**{name: str(data[name]) for name in Saved.__dataclass_fields__})
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot use {path} ({exc}); remove it and run `chat login`") from exc


def save(saved: Saved) -> Path:
    import tomli_w  # only `chat login` writes

    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / FILE_NAME
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if hasattr(os, "fchmod"):  # a left-over temporary file may have had another mode
            os.fchmod(descriptor, 0o600)
        os.write(descriptor, tomli_w.dumps(asdict(saved)).encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)
    return path


def forget() -> None:
    config_path().unlink(missing_ok=True)
