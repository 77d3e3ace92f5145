"""A small ChatGPT data export shaped like the real one: conversations with a message tree
(`mapping`, `current_node`), an edited user turn (a branch), a hidden empty system message and
a visible one, a multimodal user turn with an image part, model slugs; plus a broken one."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

T0 = 1_700_000_000.0


def _node(node_id: str, parent: str | None, children: list[str], message: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": node_id, "message": message, "parent": parent, "children": children}


def _message(
    node_id: str, role: str, parts: list[Any], at: float | None, slug: str | None = None, kind: str = "text"
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"is_visually_hidden_from_conversation": role == "system" and parts == [""]}
    if slug:
        metadata["model_slug"] = slug
    return {
        "id": node_id,
        "author": {"role": role, "name": None, "metadata": {}},
        "create_time": at,
        "update_time": None,
        "content": {"content_type": kind, "parts": parts},
        "status": "finished_successfully",
        "end_turn": True,
        "weight": 1.0,
        "metadata": metadata,
        "recipient": "all",
    }


def lisbon() -> dict[str, Any]:
    image = {"content_type": "image_asset_pointer", "asset_pointer": "file-service://file-abc", "size_bytes": 1234}
    mapping = {
        "root": _node("root", None, ["hidden"], None),
        "hidden": _node("hidden", "root", ["sys"], _message("hidden", "system", [""], None)),
        "sys": _node("sys", "hidden", ["u1"], _message("sys", "system", ["Answer briefly."], T0)),
        "u1": _node("u1", "sys", ["a1"], _message("u1", "user", ["Plan a day in Lisbon"], T0 + 10)),
        "a1": _node("a1", "u1", ["u2a", "u2b"], _message("a1", "assistant", ["Start at Belém."], T0 + 20, "gpt-4o")),
        # The first version of the next question, edited away: a branch that is not shown.
        "u2a": _node("u2a", "a1", ["a2a"], _message("u2a", "user", ["What about trams?"], T0 + 30)),
        "a2a": _node("a2a", "u2a", [], _message("a2a", "assistant", ["Tram 28."], T0 + 40, "gpt-4o")),
        "u2b": _node(
            "u2b",
            "a1",
            ["a2b"],
            _message("u2b", "user", [image, "Where is this café?"], T0 + 50, kind="multimodal_text"),
        ),
        "a2b": _node("a2b", "u2b", [], _message("a2b", "assistant", ["That is Café A Brasileira."], T0 + 60, "gpt-4o")),
    }
    return {
        "title": "Lisbon day trip",
        "create_time": T0,
        "update_time": T0 + 60,
        "mapping": mapping,
        "moderation_results": [],
        "current_node": "a2b",
        "plugin_ids": None,
        "conversation_id": "conv-lisbon",
        "id": "conv-lisbon",
        "default_model_slug": "gpt-4o",
        "safe_urls": [],
        "is_archived": False,
    }


def bread() -> dict[str, Any]:
    mapping = {
        "r": _node("r", None, ["q"], None),
        "q": _node("q", "r", ["a"], _message("q", "user", ["How long to proof sourdough?"], T0 + 100)),
        "a": _node("a", "q", [], _message("a", "assistant", ["Four to six hours."], T0 + 110, "o3")),
    }
    return {"title": "Bread", "create_time": T0 + 100, "mapping": mapping, "current_node": "a", "id": "conv-bread"}


def broken() -> dict[str, Any]:
    return {"title": "Broken", "id": "conv-broken", "current_node": "x"}  # no mapping


def conversations() -> list[dict[str, Any]]:
    return [lisbon(), bread(), broken()]


def conversations_json() -> bytes:
    return json.dumps(conversations()).encode()


def export_zip() -> bytes:
    """The zip ChatGPT sends now: several conversation files, and files that are not read."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("conversations-000.json", json.dumps([lisbon()]))
        archive.writestr("conversations-001.json", json.dumps([bread(), broken()]))
        archive.writestr("user.json", json.dumps({"id": "user-1", "email": "x@example.com"}))
        archive.writestr("file-abc.png", b"\x89PNG\r\n")
        archive.writestr("chat.html", "<html></html>")
    return buffer.getvalue()
