"""The caller's side of a request: what counts among the replies that come."""

from __future__ import annotations

import asyncio

from tactor.actors.envelope import Reply
from tactor.actors.pending import Pending


async def test_a_call_answered_twice_keeps_the_first_reply() -> None:
    # At least once: after a fault a call may be handled again, elsewhere, and both
    # replies may come before the caller looks.
    pending = Pending(asyncio.get_running_loop(), deadline=0.0)
    pending.add(Reply("m1", "p1", True, 1))
    pending.add(Reply("m1", "p2", True, 2))
    await pending.done
    assert list(pending.replies.values()) == [Reply("m1", "p1", True, 1)]


async def test_a_broadcast_keeps_one_reply_per_provider_it_reached() -> None:
    pending = Pending(asyncio.get_running_loop(), deadline=0.0, broadcast=True)
    pending.add(Reply("m1", "p1", True, 1))
    pending.add(Reply("m1", "p1", True, 9))  # the same provider again: the first counts
    pending.add(Reply("m1", "p3", True, 3))  # one it was not delivered to
    pending.settle(["p1", "p2"])
    assert not pending.done.done()
    pending.add(Reply("m1", "p2", True, 2))
    await pending.done
    assert {p: r.result for p, r in pending.replies.items()} == {"p1": 1, "p2": 2}
