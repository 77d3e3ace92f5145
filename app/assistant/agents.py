"""Agents: named presets (model, instructions, sampling) an admin manages and users pick."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from app.assistant import agents_repository as repository
from app.assistant.schemas import AgentCreate, AgentList, AgentOut, AgentUpdate
from app.core.db import Database, Document
from app.core.errors import Conflict, NotFound
from app.core.types import utc_now

AGENT_NOT_FOUND = "Agent not found"
NULLABLE = ("temperature", "max_output_tokens")


async def create_agent(database: Database, body: AgentCreate) -> AgentOut:
    now = utc_now()
    fields = {k: v for k, v in body.model_dump().items() if v is not None} | {"created_at": now, "updated_at": now}
    try:
        agent_id = await repository.insert_agent(database.db, fields)
    except DuplicateKeyError as exc:
        raise Conflict("An agent with this name exists already") from exc
    return AgentOut.model_validate({"_id": agent_id, **fields})


async def get_agent(database: Database, name: str) -> AgentOut:
    document = await repository.find_agent(database.db, name)
    if document is None:
        raise NotFound(AGENT_NOT_FOUND)
    return AgentOut.model_validate(document)


async def list_agents(database: Database) -> AgentList:
    return AgentList(items=[AgentOut.model_validate(d) for d in await repository.list_agents(database.db)])


async def update_agent(database: Database, name: str, body: AgentUpdate) -> AgentOut:
    changes: Document = {"updated_at": utc_now()}
    removals: list[str] = []
    for key in body.model_fields_set:
        value = getattr(body, key)
        if value is None and key in NULLABLE:
            removals.append(key)
        else:
            changes[key] = value
    if not await repository.update_agent(database.db, name, changes, removals):
        raise NotFound(AGENT_NOT_FOUND)
    return await get_agent(database, name)


async def delete_agent(database: Database, name: str) -> None:
    """Sessions naming it stay readable; asking them for a reply is then a 409."""
    if not await repository.delete_agent(database.db, name):
        raise NotFound(AGENT_NOT_FOUND)
