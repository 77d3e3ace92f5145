"""The in-memory fan-out (app.core.changes): owners' changes go to their subscribers only,
replay after a known id, reset for an unknown one, and bounded memory for slow readers."""

from __future__ import annotations

from app.core.changes import RESET, Change, ChangeHub


def _change(number: int, owner: str) -> Change:
    return Change(f"t{number}", "messages", "insert", {"n": number, "user_id": owner}, owner)


def _drain(hub: ChangeHub, owner: str, after: str | None) -> list[object]:
    subscription = hub.subscribe(owner, after)
    items: list[object] = []
    while not subscription.queue.empty():
        items.append(subscription.queue.get_nowait())
    hub.unsubscribe(subscription)
    return items


def test_replay_after_a_known_id_gives_that_owners_later_changes_in_order() -> None:
    hub = ChangeHub(queue_size=100, buffer_size=100)
    for number in range(10):
        hub.publish(_change(number, "alice" if number % 2 else "bob"))
    assert _drain(hub, "alice", "t4") == [_change(n, "alice") for n in (5, 7, 9)]
    assert _drain(hub, "alice", "t9") == []


def test_an_id_that_fell_out_of_the_buffer_gets_one_reset() -> None:
    hub = ChangeHub(queue_size=100, buffer_size=100)
    for number in range(150):
        hub.publish(_change(number, "alice"))
    assert _drain(hub, "alice", "t10") == [RESET]
    assert len(_drain(hub, "alice", "t60")) == 89


def test_a_reader_that_falls_behind_gets_reset_and_its_queue_is_dropped() -> None:
    """The hole: an unread stream kept every change in memory, without bound."""
    hub = ChangeHub(queue_size=10, buffer_size=100)
    slow = hub.subscribe("alice")
    for number in range(11):
        hub.publish(_change(number, "alice"))
    assert slow.queue.qsize() == 1 and slow.queue.get_nowait() is RESET
    assert hub.subscriber_count == 0, "no longer fed"
    hub.publish(_change(99, "alice"))
    assert slow.queue.empty()


def test_reset_all_resets_every_subscriber_and_forgets_old_ids() -> None:
    hub = ChangeHub()
    hub.publish(_change(1, "alice"))
    subscriptions = [hub.subscribe("alice"), hub.subscribe("bob")]
    hub.reset_all()
    assert [s.queue.get_nowait() for s in subscriptions] == [RESET, RESET]
    assert _drain(hub, "alice", "t1") == [RESET]
