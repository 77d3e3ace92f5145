from __future__ import annotations

import pymongo
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError

from app.core.db import DatabaseDep

router = APIRouter(tags=["health"])
READY_TIMEOUT_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (no database involved)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The database does not answer"}})
async def readyz(database: DatabaseDep) -> JSONResponse:
    """The database answers a ping."""
    try:
        with pymongo.timeout(READY_TIMEOUT_SECONDS):
            await database.client.admin.command("ping")
    except PyMongoError:
        return JSONResponse({"detail": "Database unavailable"}, status_code=503)
    return JSONResponse({"status": "ready"})
