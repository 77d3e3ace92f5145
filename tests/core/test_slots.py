"""Transaction slots are shared by every user's writes: owners take turns for them, so one
user's burst of writes queues behind itself, not in front of another user's write."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from bson import ObjectId
from fastapi import FastAPI
from httpx import AsyncClient

from app.core.locks import LockTimeout, Slots
from tests.factories import make_session, make_user


async def _granted_in_order(slots: Slots, owners: list[str]) -> list[str]:
    """The order in which `owners` (queued in that order while the one slot is held) get it."""
    order: list[str] = []

    async def take(owner: str) -> None:
        async with slots.hold(owner):
            order.append(owner)

    async with slots.hold("holder"):
        tasks = [asyncio.create_task(take(owner)) for owner in owners]
        while sum(slots.waiting(owner) for owner in set(owners)) < len(owners):
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return order


async def test_owners_take_turns_and_each_owner_s_waiters_keep_their_order() -> None:
    order = await _granted_in_order(Slots(1), ["a", "a", "a", "b", "c", "c"])
    assert order == ["a", "b", "c", "a", "c", "a"]


async def test_a_waiter_that_times_out_or_is_cancelled_leaves_the_line() -> None:
    slots = Slots(1)
    async with slots.hold("holder"):
        with pytest.raises(LockTimeout):
            async with slots.hold("late", timeout=0.01):
                pass
        cancelled = asyncio.create_task(slots.hold("gone").__aenter__())
        while not slots.waiting("gone"):
            await asyncio.sleep(0)
        cancelled.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cancelled
        assert slots.waiting("late") == slots.waiting("gone") == 0
    async with asyncio.timeout(1), slots.hold("next"):  # the slot was given back, not lost
        pass


async def test_another_user_s_post_is_not_queued_behind_one_user_s_burst(app: FastAPI, client: AsyncClient) -> None:
    burst, other = await make_user(client), await make_user(client)
    sessions = [(await make_session(client, burst))["_id"] for _ in range(10)]
    other_session = (await make_session(client, other))["_id"]
    batch = {"messages": [{"content": f"burst {i}"} for i in range(50)]}
    database = app.state.database
    async with contextlib.AsyncExitStack() as held:  # every slot taken: the burst waits
        for _ in range(app.state.settings.db_max_transactions):
            await held.enter_async_context(database.transaction_slots.hold("test"))
        posts = [
            asyncio.create_task(client.post(f"/chat/sessions/{s}/messages/batch", json=batch, headers=burst.headers))
            for s in sessions
        ]
        async with asyncio.timeout(10):
            while database.transaction_slots.waiting(ObjectId(burst.id)) < len(posts):
                await asyncio.sleep(0.01)
        single = asyncio.create_task(
            client.post(f"/chat/sessions/{other_session}/messages", json={"content": "hi"}, headers=other.headers)
        )
        async with asyncio.timeout(10):
            while not database.transaction_slots.waiting(ObjectId(other.id)):
                await asyncio.sleep(0.01)
    assert (await single).status_code == 201
    # The slots freed at once go round the users: at most the other slots' worth of the burst runs
    # beside the other user's post (first come, first served: all 10 went first, 7+ stored before).
    finished_first = sum(post.done() for post in posts)
    others = app.state.settings.db_max_transactions - 1
    assert finished_first <= others, f"{finished_first} of the burst's posts were stored before the other user's"
    assert [(await post).status_code for post in posts] == [201] * len(posts)
