"""`chat-admin import --user NAME FILE`: the same import as the API, from a file."""

from __future__ import annotations

import json
from pathlib import Path

from httpx import AsyncClient

from app.core.config import Settings
from tests.admin.test_cli import _env, chat_admin
from tests.factories import all_pages, make_user
from tests.transfer import chatgpt_export


async def test_import_a_chatgpt_zip_for_a_user_twice(client: AsyncClient, settings: Settings, tmp_path: Path) -> None:
    user = await make_user(client)
    archive = tmp_path / "export.zip"
    archive.write_bytes(chatgpt_export.export_zip())
    env = _env(settings)
    first = await chat_admin(env, "import", "--user", user.username, str(archive))
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["format"] == "chatgpt-zip" and report["messages"] == {"created": 7, "unchanged": 0}
    assert {s["title"] for s in await all_pages(client, user, "/chat/sessions")} == {"Lisbon day trip", "Bread"}
    second = json.loads((await chat_admin(env, "import", "--user", user.username, str(archive))).stdout)
    assert second["sessions"] == {"created": 0, "unchanged": 2} and second["messages"]["created"] == 0
    missing_user = await chat_admin(env, "import", "--user", "nobody", str(archive))
    assert missing_user.returncode == 1 and "not found" in missing_user.stderr
    missing_file = await chat_admin(env, "import", "--user", user.username, str(tmp_path / "none.json"))
    assert missing_file.returncode == 1 and "cannot read" in missing_file.stderr
