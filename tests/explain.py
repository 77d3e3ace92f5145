"""explain() for the queries a request sends: the plan must read an index, never the whole collection."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import Document


def _stages(plan: Any) -> list[str]:
    if isinstance(plan, dict):
        found = [plan["stage"]] if isinstance(plan.get("stage"), str) else []
        return found + [stage for value in plan.values() for stage in _stages(value)]
    if isinstance(plan, list):
        return [stage for item in plan for stage in _stages(item)]
    return []


async def assert_uses_index(db: AsyncDatabase[Document], collection: str, query: Document) -> None:
    explained = await db.command("explain", {"find": collection, "filter": query}, verbosity="queryPlanner")
    stages = _stages(explained["queryPlanner"]["winningPlan"])
    assert "COLLSCAN" not in stages and "IXSCAN" in stages, (collection, query, stages)
