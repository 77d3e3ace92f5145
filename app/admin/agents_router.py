"""Admin REST for agents: create, list, get, patch, delete (admin only, login sessions only)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.admin.dependencies import AdminUser
from app.assistant import agents
from app.assistant.schemas import AgentCreate, AgentList, AgentOut, AgentUpdate
from app.core.db import DatabaseDep
from app.core.responses import error_responses

router = APIRouter(prefix="/admin/agents", tags=["admin"], responses=error_responses(400, 401, 403, 413, 503))
NOT_FOUND = error_responses(404)


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(409))
async def create_agent(body: AgentCreate, admin: AdminUser, database: DatabaseDep) -> AgentOut:
    """A new agent (409 when the name is taken)."""
    return await agents.create_agent(database, body)


@router.get("")
async def list_agents(admin: AdminUser, database: DatabaseDep) -> AgentList:
    return await agents.list_agents(database)


@router.get("/{name}", responses=NOT_FOUND)
async def get_agent(name: str, admin: AdminUser, database: DatabaseDep) -> AgentOut:
    return await agents.get_agent(database, name)


@router.patch("/{name}", responses=NOT_FOUND)
async def update_agent(name: str, body: AgentUpdate, admin: AdminUser, database: DatabaseDep) -> AgentOut:
    """Change some fields; null removes temperature or max_output_tokens."""
    return await agents.update_agent(database, name, body)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_agent(name: str, admin: AdminUser, database: DatabaseDep) -> Response:
    """Sessions naming the agent stay readable; asking them for a reply is then a 409."""
    await agents.delete_agent(database, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
