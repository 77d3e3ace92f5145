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
