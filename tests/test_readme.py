"""README.md is executable: its `sh` blocks, in order, run as one bash script (`set -euo
pipefail`) against a fresh server, and must pass, with no 5xx in the server's log.

Conventions for whoever writes README:
- A ```sh block is run, top to bottom, in the same shell as the blocks before it. Text that is
  not meant to run takes another fence: ```text (output, excerpts), ```toml, ```json,
  ```python, ```nginx.
- A ```sh block whose fence line is directly preceded by `<!-- readme-test: skip REASON -->`
  is not run: the blocks that start a server (`make run`: this test starts its own), install
  packages or need what a test machine does not have. Say why in REASON.
- README sets `BASE=${BASE:-http://127.0.0.1:8000}` once; here BASE is the server under test.
  The shell runs in a fresh directory with the checkout's `.venv` linked into it (so
  `.venv/bin/chat-admin` works as written), the server's DATA_DIR, and a HOME and
  XDG_CONFIG_HOME of its own (`chat login` writes there).
- Settings README asks to export (or put in `.env`) before `make run` are in `server_env`
  below: the server gets them, and so does the shell. The model server README's `.env` points
  at (Ollama) is the fake upstream of tests/assistant, serving README's model name, given to
  the server as MODEL_BASE_URL; the test checks that README's blocks reached it.
- A block that follows a stream bounds it itself (`curl --max-time`, `timeout`), and a curl
  whose status matters uses --fail-with-body or README's `expect` helper.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.assistant.fake_upstream import FakeUpstream, Script
from tests.server_process import REPO_ROOT, ServerProcess

README = REPO_ROOT / "README.md"
SKIP_MARK = re.compile(r"^<!--\s*readme-test:\s*skip\b.*-->\s*$")
FENCE = re.compile(r"^```(\S*)\s*$")
SCRIPT_TIMEOUT = 240


@dataclass(frozen=True)
class Block:
    line: int  # README line of the block's first command
    text: str


def sh_blocks(markdown: str) -> list[Block]:
    """The ```sh blocks that are run, in order (those after a skip mark are left out)."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        skipped = index > 0 and SKIP_MARK.match(lines[index - 1]) is not None
        if fence.group(1) == "sh" and not skipped:
            blocks.append(Block(index + 2, "\n".join(lines[index + 1 : end])))
        index = end + 1
    return blocks


def script_of(blocks: list[Block]) -> tuple[str, dict[int, int]]:
    """One bash script, and the README line of each of its lines (for the failure message)."""
    lines = ["set -euo pipefail", "trap 'echo \"readme-test: failed at script line $LINENO\" >&2' ERR"]
    readme_line: dict[int, int] = {}
    for block in blocks:
        lines.append(f'echo "### README.md:{block.line} at $SECONDS s" >&2')
        for offset, text in enumerate(block.text.splitlines()):
            lines.append(text)
            readme_line[len(lines)] = block.line + offset
    return "\n".join(lines) + "\n", readme_line


def server_errors(log: Path) -> list[str]:
    """Every 5xx answer and every ERROR line in the server's JSON log."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        status = entry.get("status")
        if (isinstance(status, int) and status >= 500) or entry.get("level") == "ERROR":
            found.append(line)
    return found


README_MODEL = "llama3.2"  # the model README's agents use (Ollama's, in README's example)


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    """The model server README's `.env` points at (Ollama there): a fake that serves README's
    model at a local model's pace (about 5 s a reply), so that README's cancel meets a reply
    still being written, and what follows it must work as it would for a user of Ollama."""
    paced = Script(pieces=["Tagus", ", ", "Douro", " and ", "Mondego", ". "] * 8, delay=0.1)
    with FakeUpstream(default=paced, models=[README_MODEL]) as fake:
        yield fake


@pytest.fixture
def server_env(upstream: FakeUpstream) -> dict[str, str]:
    """Settings README says to put in `.env` or export before `make run`; the server and the
    shell get them."""
    return {"METRICS_TOKEN": secrets.token_urlsafe(32), "MODEL_BASE_URL": upstream.base_url}


@pytest.fixture
def readme_server(tmp_path: Path, server_env: dict[str, str]) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "data", env=server_env).start()
    try:
        yield server
    finally:
        server.stop()


def test_sh_blocks_are_found_in_order_and_skip_marks_are_honoured() -> None:
    skipped = "<!-- readme-test: skip starts a server -->\n```sh\nb\n```\n"
    markdown = "```sh\na\n```\n" + skipped + "```text\nc\n```\n```sh\nd\ne\n```\n"
    assert sh_blocks(markdown) == [Block(2, "a"), Block(12, "d\ne")]


def test_every_readme_shell_block_runs_against_a_fresh_server(
    readme_server: ServerProcess, server_env: dict[str, str], upstream: FakeUpstream, tmp_path: Path
) -> None:
    blocks = sh_blocks(README.read_text())
    assert len(blocks) >= 8, "README's shell blocks were not found"
    script, readme_line = script_of(blocks)
    workdir = tmp_path / "shell"
    workdir.mkdir()
    (workdir / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "MONGODB_", "JWT_"))}
    env.update(server_env)
    env.update(
        BASE=readme_server.base_url,
        DATA_DIR=str(readme_server.data_dir),
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"),
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=workdir, env=env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT
    )
    failed_at = re.search(r"readme-test: failed at script line (\d+)", done.stderr)
    where = f"README.md:{readme_line.get(int(failed_at.group(1)), '?')}" if failed_at else "?"
    output = f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    assert done.returncode == 0, f"failed at {where}\n{output}"
    assert README_MODEL in {request.get("model") for request in upstream.requests}, "no reply reached the model"
    errors = server_errors(readme_server.log_path)
    assert not errors, "the server answered 5xx or logged an error:\n" + "\n".join(errors[:10])
