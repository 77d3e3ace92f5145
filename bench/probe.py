"""In-process probes: the database commands one request issues (PyMongo command monitoring),
and explain() of every query the API sends, to catch collection scans."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from httpx import ASGITransport, AsyncClient
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from app.core.config import Settings
from app.core.db import MESSAGE_TERMS, SEARCH_INDEXER, TERM_COUNT_DELTAS, TERM_COUNTS
from app.main import create_app

IGNORED = {"hello", "isMaster", "ismaster", "endSessions", "ping", "createIndexes", "saslStart", "saslContinue"}
PASSWORD = "bench-password-123"


def _search_indexer(name: str, command: dict[str, Any]) -> bool:
    """The search indexer works behind the writes, in the background: its lease and its index
    writes are not commands of the request they happen to coincide with (they are explained all
    the same)."""
    collection = command.get(name)
    merging = name == "find" and collection == TERM_COUNT_DELTAS and "txnNumber" in command  # search's are not
    return (
        collection == SEARCH_INDEXER
        or merging
        or (name in {"insert", "update", "delete"} and collection in INDEX_WRITES)
    )


INDEX_WRITES = {MESSAGE_TERMS, TERM_COUNTS, TERM_COUNT_DELTAS}


def _change_stream(event: monitoring.CommandStartedEvent) -> bool:
    """The server's one change stream polls in the background: not a command of the request."""
    if event.command_name == "getMore":
        return bool(event.command.get("collection") == "$cmd.aggregate")
    pipeline = event.command.get("pipeline", []) if event.command_name == "aggregate" else []
    return any("$changeStream" in stage for stage in pipeline)


@dataclass
class Recorder(monitoring.CommandListener):
    commands: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    recording: bool = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.recording and event.command_name not in IGNORED and not _change_stream(event):
            self.commands.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def probe(uri: str, data_dir: Path) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """({endpoint: {"count", "commands"}}, [collection scans])."""
    recorder = Recorder()
    monitoring.register(recorder)  # applies to clients created from now on: the app's below
    settings = Settings(
        _env_file=None, mongodb_uri=uri, mongodb_db="bench_probe", jwt_secret="b" * 48, data_dir=data_dir
    )  # type: ignore[call-arg]
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http,
    ):
        await http.post("/auths/register", json={"username": "probe", "password": PASSWORD})
        token = (await http.post("/auths/login", data={"username": "probe", "password": PASSWORD})).json()[
            "access_token"
        ]
        headers = {"Authorization": f"Bearer {token}"}
        session_id = (await http.post("/chat/sessions", json={"title": "probe"}, headers=headers)).json()["_id"]
        for _ in range(3):
            await http.post(f"/chat/sessions/{session_id}/messages", json={"content": "warm"}, headers=headers)
        messages = f"/chat/sessions/{session_id}/messages"
        batch = {"messages": [{"content": f"m{i}", "metadata": {"i": i}} for i in range(20)]}
        requests: dict[str, tuple[str, str, Any] | tuple[str, str, Any, dict[str, str]]] = {
            "send_message": ("POST", messages, {"content": "probe"}),
            # What programs use (issue "Programs as clients"):
            "send_message_keyed": ("POST", messages, {"content": "keyed"}, {"Idempotency-Key": "probe-1"}),
            "send_message_replayed": ("POST", messages, {"content": "keyed"}, {"Idempotency-Key": "probe-1"}),
            "send_batch_20": ("POST", messages + "/batch", batch),
            "send_batch_20_keyed": ("POST", messages + "/batch", batch, {"Idempotency-Key": "probe-2"}),
            "read_forward_1000": ("GET", messages + "?after_seq=0&limit=1000", None),
            "create_named_session": ("POST", "/chat/sessions", {"name": "probe-agent", "platform": "cli"}),
            "get_or_create_existing": ("POST", "/chat/sessions", {"name": "probe-agent", "platform": "cli"}),
            "find_session_by_name": ("GET", "/chat/sessions?name=probe-agent", None),
            "list_sessions_by_platform": ("GET", "/chat/sessions?platform=cli", None),
            "patch_metadata": ("PATCH", f"/chat/sessions/{session_id}", {"metadata": {"run": {"id": 1}}}),
            "list_messages": ("GET", f"/chat/sessions/{session_id}/messages", None),
            "list_sessions": ("GET", "/chat/sessions", None),
            "me": ("GET", "/auths/me", None),
            "healthz": ("GET", "/healthz", None),
            # Not in the endpoint table, but their queries are explained too:
            "create_session": ("POST", "/chat/sessions", {"title": "another"}),
            "get_session": ("GET", f"/chat/sessions/{session_id}", None),
            "rename_session": ("PATCH", f"/chat/sessions/{session_id}", {"title": "renamed"}),
            "list_messages_page_2": ("GET", f"/chat/sessions/{session_id}/messages?limit=2", None),
            # Search and export (issue "Find and carry"):
            "search_1_word": ("GET", "/chat/search?q=warm", None),
            "search_2_words": ("GET", "/chat/search?q=warm+probe", None),
            "search_3_words": ("GET", "/chat/search?q=m1+warm+pro", None),
            "search_in_session": ("GET", f"/chat/search?q=keyed&session_id={session_id}", None),
            "export_session": ("GET", f"/chat/sessions/{session_id}/export?format=md", None),
            "export_all": ("GET", "/chat/export", None),
            "delete_session": ("DELETE", f"/chat/sessions/{session_id}", None),
        }
        counts: dict[str, dict[str, Any]] = {}
        queries: list[tuple[str, dict[str, Any]]] = []
        for name, (method, path, body, *extra) in requests.items():
            recorder.commands.clear()
            recorder.recording = True
            response = await http.request(method, path, json=body, headers=headers | (extra[0] if extra else {}))
            recorder.recording = False
            assert response.status_code < 400, (name, response.text)
            names = [command for command, body in recorder.commands if not _search_indexer(command, body)]
            counts[name] = {"count": len(names), "commands": names}
            queries += recorder.commands
        scans = await collection_scans(app.state.database.db, queries)
    # Dropped once the app has stopped: its search indexer, still running, took the dropped
    # lease for another server's ("lost its lease" in the bench's output).
    async with AsyncMongoClient(uri) as client:
        await client.drop_database("bench_probe")
    monitoring._LISTENERS.command_listeners.remove(recorder)  # noqa: SLF001 - no public unregister
    return counts, scans


async def collection_scans(
    db: AsyncDatabase[dict[str, Any]], commands: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    scans = []
    for name, command in commands:
        if name == "find":
            collection, queries = command["find"], [command.get("filter", {})]
        elif name == "findAndModify":
            collection, queries = command["findAndModify"], [command.get("query", {})]
        elif name in ("update", "delete"):
            key = "updates" if name == "update" else "deletes"
            collection, queries = command[name], [statement["q"] for statement in command.get(key, [])]
        else:
            continue
        for query in queries:
            plan = await db.command("explain", {"find": collection, "filter": query}, verbosity="queryPlanner")
            if "COLLSCAN" in json.dumps(plan, default=str):
                scans.append({"collection": collection, "command": name, "filter": json.dumps(query, default=str)})
    return scans
