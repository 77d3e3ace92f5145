"""`chat-admin agents list|show|create|update|delete`: the agents of /admin/agents from a
shell. Values are validated like the REST bodies; a refused value exits 2 naming the field."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import ValidationError

from app.assistant import agents
from app.assistant.schemas import AgentCreate, AgentOut, AgentUpdate
from app.core.config import Settings
from app.core.db import Database

FIELDS = ("model", "instructions", "temperature", "max_output_tokens", "description")


def add_parsers(commands: Any) -> None:
    group = commands.add_parser("agents", help="the agents that reply in sessions (list, show, create, update, delete)")
    actions = group.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every agent, in name order").set_defaults(run=list_agents)
    for name, run, text in (("show", show_agent, "one agent as JSON"), ("delete", delete_agent, "delete an agent")):
        action = actions.add_parser(name, help=text)
        action.add_argument("name")
        action.set_defaults(run=run)
    for name, run, text in (
        ("create", create_agent, "a new agent (--model required)"),
        ("update", update_agent, "change some fields (--clear FIELD removes temperature or max_output_tokens)"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("name")
        action.add_argument("--model", required=name == "create")
        action.add_argument("--instructions", help="the system prompt, or - to read it from stdin")
        action.add_argument("--temperature", type=float)
        action.add_argument("--max-output-tokens", type=int)
        action.add_argument("--description")
        if name == "update":
            action.add_argument("--clear", action="append", choices=["temperature", "max_output_tokens"], default=[])
        action.set_defaults(run=run)


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    given = {field: getattr(args, field) for field in FIELDS if getattr(args, field) is not None}
    if given.get("instructions") == "-":
        given["instructions"] = sys.stdin.read()
    return given


def _refused(exc: ValidationError) -> None:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "agent"
    print(f"chat-admin: unacceptable {field}: {error['msg']}", file=sys.stderr)
    sys.exit(2)


def _print(agent: AgentOut) -> None:
    print(agent.model_dump_json(by_alias=True, indent=2))


async def list_agents(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    print(f"{'NAME':<24} {'MODEL':<32} DESCRIPTION")
    for agent in (await agents.list_agents(database)).items:
        print(f"{agent.name:<24} {agent.model:<32} {agent.description}")


async def show_agent(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    _print(await agents.get_agent(database, args.name))


async def create_agent(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    try:
        body = AgentCreate.model_validate({"name": args.name, **_fields(args)})
    except ValidationError as exc:
        _refused(exc)
        return
    _print(await agents.create_agent(database, body))


async def update_agent(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    try:
        body = AgentUpdate.model_validate(_fields(args) | dict.fromkeys(args.clear))
    except ValidationError as exc:
        _refused(exc)
        return
    _print(await agents.update_agent(database, args.name, body))


async def delete_agent(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    await agents.delete_agent(database, args.name)
    print(f"deleted agent {args.name}")
