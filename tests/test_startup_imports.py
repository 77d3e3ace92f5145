"""Issue 20: `chat --help` and `chat-admin --help` took 0.5-0.7 s importing what they never use.
Their entry modules import argparse and their own small modules only; the client, the web app
and the database driver wait for a command that needs them (timings are in bench/startup.py).
What `chat append` itself loads is checked against a live server, in integrations/test_cli.py."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("httpx", "pydantic", "tqdm", "fastapi", "pymongo", "uvicorn", "mcp", "chat_client._client")


def modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    return set(done.stdout.split())


def test_the_chat_command_imports_the_client_only_when_a_command_runs() -> None:
    loaded = modules_after("from chat_client.cli.main import parser; parser().format_help()")
    assert not {name for name in loaded if name.split(".")[0] in HEAVY or name in HEAVY}


def test_chat_admin_parses_its_arguments_without_the_database_driver_or_the_web_app() -> None:
    loaded = modules_after("from app.admin.cli import parser; parser().format_help()")
    assert not {name for name in loaded if name.split(".")[0] in HEAVY}
