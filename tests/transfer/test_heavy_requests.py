"""Issue 19, row 4: one account cannot run more than HEAVY_REQUESTS_PER_USER imports (exports,
searches) at once; others' are not affected, and the slot is given back when it ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from tests.conftest import StartApp
from tests.factories import make_user
from tests.transfer import chatgpt_export

JSON = {"Content-Type": "application/json"}


async def test_a_second_concurrent_import_of_one_account_is_a_429(start_app: StartApp) -> None:
    server = await start_app(heavy_requests_per_user=1)
    hog, other = await make_user(server), await make_user(server)
    body = json.dumps([chatgpt_export.bread()]).encode()
    reading, release = asyncio.Event(), asyncio.Event()

    async def held_body() -> AsyncIterator[bytes]:
        yield body[:10]
        reading.set()  # the import is reading its body: it holds its slot
        await release.wait()
        yield body[10:]

    first = asyncio.create_task(server.post("/chat/import", content=held_body(), headers={**hog.headers, **JSON}))
    await asyncio.wait_for(reading.wait(), 10)
    second = await server.post("/chat/import", content=body, headers={**hog.headers, **JSON})
    assert second.status_code == 429, second.text
    assert second.headers["retry-after"] and "HEAVY_REQUESTS_PER_USER" in second.json()["detail"]
    assert (await server.post("/chat/import", content=body, headers={**other.headers, **JSON})).status_code == 200
    release.set()
    assert (await asyncio.wait_for(first, 10)).status_code == 200
    again = await server.post("/chat/import", content=body, headers={**hog.headers, **JSON})
    assert again.status_code == 200 and again.json()["sessions"] == {"created": 0, "unchanged": 1}
