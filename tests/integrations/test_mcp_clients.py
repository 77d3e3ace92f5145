"""README's MCP client configs, run for real: the MCP Inspector (the version README pins) lists
the tools through the HTTP config, and through the desktop config, which starts `mcp-remote`
as a desktop client would. Needs Node.js's npx and the npm registry (or its cache)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integrations.conftest import Account
from tests.server_process import REPO_ROOT
from tests.test_readme import FENCE

INSPECTOR = re.compile(r"@modelcontextprotocol/inspector@[\d.]+")
README_URL = "http://127.0.0.1:8000"
NPX_TIMEOUT = 240

pytestmark = pytest.mark.skipif(shutil.which("npx") is None, reason="needs Node.js's npx")


def readme_mcp_configs() -> list[dict[str, Any]]:
    """README's ```json blocks that configure MCP servers, in order."""
    configs, block, inside = [], [], False
    for line in (REPO_ROOT / "README.md").read_text().splitlines():
        if inside and line.startswith("```"):
            text = "\n".join(block)
            if '"mcpServers"' in text:
                configs.append(json.loads(text))
            inside = False
        elif inside:
            block.append(line)
        elif (fence := FENCE.match(line)) and fence.group(1) == "json":
            inside, block = True, []
    return configs


def with_server(config: dict[str, Any], base_url: str, key: str) -> dict[str, Any]:
    text = json.dumps(config).replace(README_URL, base_url).replace("cak_...", key)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@pytest.mark.parametrize("which", ["http", "desktop"])
def test_readme_mcp_configs_work_in_the_pinned_inspector(account: Account, tmp_path: Path, which: str) -> None:
    http_config, desktop_config = readme_mcp_configs()
    chosen = http_config if which == "http" else desktop_config
    config = with_server(chosen, account.base_url, account.api_key(["read"]))
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(config))
    match = INSPECTOR.search((REPO_ROOT / "README.md").read_text())
    assert match is not None, "README pins no MCP Inspector version"
    command = ["npx", "-y", match.group(0), "--cli", "--config", str(path), "--server", "chat"]
    command += ["--method", "tools/list"]
    env = {**os.environ, "MCP_INSPECTOR_SECRET_STORE": "memory"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=NPX_TIMEOUT, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    tools = {tool["name"] for tool in json.loads(done.stdout)["tools"]}
    assert tools == {"list_sessions", "read_messages", "search_messages"}  # a read-only key sees the read tools
