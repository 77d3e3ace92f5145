"""Dependencies holding one of the caller's slots for an expensive kind of request (see
app.core.capacity) for the whole request, a streamed response's body included."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from fastapi import Request

from app.auth.dependencies import CurrentUser
from app.core.capacity import OwnerSlots


def heavy_request(kind: str) -> Callable[[Request, CurrentUser], AsyncIterator[None]]:
    """Use as `dependencies=[Depends(heavy_request("export"))]`: 429 past HEAVY_REQUESTS_PER_USER."""

    async def hold_slot(request: Request, user: CurrentUser) -> AsyncIterator[None]:
        slots: OwnerSlots = request.app.state.heavy_requests
        with slots.hold(user.id, kind):
            yield

    return hold_slot
