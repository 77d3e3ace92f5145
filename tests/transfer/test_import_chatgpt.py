"""POST /chat/import of a ChatGPT export: the tree flattened along current_node, roles, text,
times and model slugs kept, non-text parts noted, a broken conversation reported, and a second
import a no-op; as conversations.json in the body and as the zip in a multipart form."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from typing import Any

from httpx import AsyncClient

from app.core.config import Settings
from tests.factories import TestUser, all_pages, make_user, wait_for_search_index
from tests.transfer import chatgpt_export
from tests.transfer.chatgpt_export import T0


def _at(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _import(
    client: AsyncClient, user: TestUser, content_type: str | None = None, **request: Any
) -> dict[str, Any]:
    headers = {**user.headers, **({"Content-Type": content_type} if content_type else {})}
    response = await client.post("/chat/import", headers=headers, **request)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def _check_imported(client: AsyncClient, user: TestUser) -> None:
    sessions = {s["title"]: s for s in await all_pages(client, user, "/chat/sessions")}
    assert set(sessions) == {"Lisbon day trip", "Bread"}
    lisbon = sessions["Lisbon day trip"]
    assert lisbon["platform"] == "chatgpt"
    assert lisbon["metadata"] == {"model": "gpt-4o"}
    messages = await all_pages(client, user, f"/chat/sessions/{lisbon['_id']}/messages", after_seq=0)
    shown = [(m["seq"], m["role"], m["content"], m["created_at"]) for m in messages]
    assert shown == [
        (1, "system", "Answer briefly.", _at(T0)),
        (2, "user", "Plan a day in Lisbon", _at(T0 + 10)),
        (3, "assistant", "Start at Belém.", _at(T0 + 20)),
        (4, "user", "Where is this café?", _at(T0 + 50)),
        (5, "assistant", "That is Café A Brasileira.", _at(T0 + 60)),
    ]
    assert messages[2]["metadata"] == {"model": "gpt-4o"}
    assert messages[3]["metadata"] == {"non_text_parts": [{"content_type": "image_asset_pointer"}]}
    assert [m["metadata"] for m in messages[:2]] == [{}, {}]  # provenance is kept off the user's metadata
    await wait_for_search_index(client)
    hits = (await client.get("/chat/search", params={"q": "cafe brasil"}, headers=user.headers)).json()["items"]
    assert [hit["message"]["seq"] for hit in hits] == [5]


def _expected_report(kind: str) -> dict[str, Any]:
    return {
        "format": kind,
        "sessions": {"created": 2, "unchanged": 0},
        "messages": {"created": 7, "unchanged": 0},
        "skipped": [
            {"conversation": "Lisbon day trip", "message": "hidden", "reason": "empty message"},
            {
                "conversation": "Broken",
                "message": None,
                "reason": "the conversation has no message tree (mapping and current_node)",
            },
        ],
        "skipped_total": 2,
        "created_without_name": [],
    }


def _sorted(report: dict[str, Any]) -> dict[str, Any]:
    return {**report, "skipped": sorted(report["skipped"], key=lambda s: s["conversation"], reverse=True)}


async def test_conversations_json_imports_as_documented_and_twice_is_a_no_op(client: AsyncClient) -> None:
    user = await make_user(client)
    body = chatgpt_export.conversations_json()
    first = await _import(client, user, "application/json", content=body)
    assert _sorted(first) == _sorted(_expected_report("chatgpt-json"))
    await _check_imported(client, user)
    again = await _import(client, user, content=body)  # no Content-Type: the first bytes say which
    assert again["sessions"] == {"created": 0, "unchanged": 2}
    assert again["messages"] == {"created": 0, "unchanged": 7}
    await _check_imported(client, user)


async def test_the_zip_with_several_files_imports_from_a_multipart_form(client: AsyncClient) -> None:
    user = await make_user(client)
    files = {"file": ("chatgpt-export.zip", chatgpt_export.export_zip(), "application/zip")}
    report = await _import(client, user, files=files, data={"note": "ignored"})
    assert _sorted(report) == _sorted(_expected_report("chatgpt-zip"))
    await _check_imported(client, user)
    assert (await _import(client, user, files=files))["messages"] == {"created": 0, "unchanged": 7}


async def test_a_continued_conversation_adds_only_its_new_messages(client: AsyncClient) -> None:
    user = await make_user(client)
    conversation = chatgpt_export.bread()
    await _import(client, user, json=[conversation])
    conversation["mapping"]["a"]["children"] = ["q2"]
    conversation["mapping"]["q2"] = chatgpt_export._node(
        "q2", "a", [], chatgpt_export._message("q2", "user", ["And the bulk ferment?"], T0 + 200)
    )
    conversation["current_node"] = "q2"
    report = await _import(client, user, json=[conversation])
    assert report["sessions"] == {"created": 0, "unchanged": 1}
    assert report["messages"] == {"created": 1, "unchanged": 2}


async def test_another_users_import_of_the_same_file_is_their_own(client: AsyncClient) -> None:
    first, second = await make_user(client), await make_user(client)
    body = chatgpt_export.conversations_json()
    await _import(client, first, content=body)
    report = await _import(client, second, content=body)
    assert report["sessions"]["created"] == 2 and report["messages"]["created"] == 7
    await _check_imported(client, first)
    await _check_imported(client, second)


async def test_unreadable_files_are_a_422_that_does_not_echo_them(client: AsyncClient) -> None:
    user = await make_user(client)
    for body in (b"secret-garbage", b"[1, 2", b'{"not": "a header"}\n', b"PK\x03\x04secret-garbage"):
        response = await client.post("/chat/import", content=body, headers=user.headers)
        assert response.status_code == 422, body
        assert "secret" not in response.text and "garbage" not in response.text
    form = await client.post("/chat/import", files={"other": ("a.json", b"[]")}, headers=user.headers)
    assert form.status_code == 422 and "file" in form.text


async def test_the_upload_is_spooled_owner_only_under_data_dir_and_left_nowhere(
    client: AsyncClient, settings: Settings
) -> None:
    user = await make_user(client)
    await _import(client, user, content=chatgpt_export.conversations_json())
    imports = settings.data_dir / "imports"
    assert stat.S_IMODE(imports.stat().st_mode) == 0o700
    assert list(imports.iterdir()) == []  # the temporary file was unlinked from the start
