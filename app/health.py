from __future__ import annotations

import pymongo
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError

from app.chat.search_indexer import SearchIndexer
from app.core.db import DatabaseDep
from app.core.types import utc_now

router = APIRouter(tags=["health"])
READY_TIMEOUT_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (no database involved)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The database does not answer"}})
async def readyz(request: Request, database: DatabaseDep) -> JSONResponse:
    """The database answers a ping. `search_index` tells how far search is behind the
    writes: `lag_seconds` since the index last held every stored message (`caught_up_at`);
    a lag does not make the server unready, search only misses the newest messages."""
    indexer: SearchIndexer = request.app.state.search_indexer
    try:
        with pymongo.timeout(READY_TIMEOUT_SECONDS):
            await database.client.admin.command("ping")
            status = await indexer.status()
    except PyMongoError:
        return JSONResponse({"detail": "Database unavailable"}, status_code=503)
    return JSONResponse({"status": "ready", "search_index": status.report(utc_now())})
