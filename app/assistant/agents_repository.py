"""The agents collection: one document per agent, unique by name (an index)."""

from __future__ import annotations

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import AGENTS, Document

MAX_AGENTS_LISTED = 1000


async def insert_agent(db: AsyncDatabase[Document], fields: Document) -> ObjectId:
    """DuplicateKeyError when the name is taken."""
    result = await db[AGENTS].insert_one(fields)
    agent_id: ObjectId = result.inserted_id
    return agent_id


async def find_agent(
    db: AsyncDatabase[Document], name: str, session: AsyncClientSession | None = None
) -> Document | None:
    return await db[AGENTS].find_one({"name": name}, session=session)


async def list_agents(db: AsyncDatabase[Document]) -> list[Document]:
    """Every agent in name order (an admin keeps a handful; the list is capped all the same)."""
    cursor = db[AGENTS].find({}).sort("name", ASCENDING).limit(MAX_AGENTS_LISTED)
    return await cursor.to_list(MAX_AGENTS_LISTED)


async def update_agent(db: AsyncDatabase[Document], name: str, changes: Document, removals: list[str]) -> bool:
    update: Document = {"$set": changes}
    if removals:
        update["$unset"] = dict.fromkeys(removals, "")
    result = await db[AGENTS].update_one({"name": name}, update)
    return result.matched_count == 1


async def delete_agent(db: AsyncDatabase[Document], name: str) -> bool:
    return (await db[AGENTS].delete_one({"name": name})).deleted_count == 1
