"""The waiting room: senders that find a mailbox full wait in line behind one that asks.

These drive :class:`WaitingRoom` with a bounded list standing in for a server's mailbox,
to pin down its rules exactly (how often it asks, in which order senders get in, who
goes on when one leaves). The same behaviour over the real servers is in
``test_transport_contract.py`` (``test_senders_waiting_for_room_...``).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tactor.transports.waiting_room import WaitingRoom


class Box:
    """A bounded mailbox: ``attempt(item)`` puts ``item`` in, or returns None when full."""

    def __init__(self, size: int) -> None:
        self.size, self.items, self.asked = size, list[str](), 0

    def attempt(self, item: str, fail: BaseException | None = None) -> object:
        async def once() -> int | None:
            self.asked += 1
            await asyncio.sleep(0)  # a round trip
            if fail is not None:
                raise fail
            if len(self.items) >= self.size:
                return None
            self.items.append(item)
            return len(self.items)

        return once

    async def consume(self, count: int) -> list[str]:
        """Take ``count`` items as they come, a little at a time (a slow consumer)."""
        taken: list[str] = []
        while len(taken) < count:
            if self.items:
                taken.append(self.items.pop(0))
            await asyncio.sleep(0.0005)
        return taken


async def _send(room: WaitingRoom, box: Box, item: str) -> int:
    return await room.send("mb", box.attempt(item))  # type: ignore[arg-type]


async def _in_line(room: WaitingRoom, count: int) -> None:
    """Wait until ``count`` senders wait in the line (beside the one probing)."""
    while (line := room.lines.get("mb")) is None or len(line.waiting) < count:  # noqa: ASYNC110
        await asyncio.sleep(0)


async def test_while_a_mailbox_stays_full_only_one_sender_asks() -> None:
    room, box = WaitingRoom(first=0.005, cap=0.02), Box(1)
    await _send(room, box, "x")
    senders = [asyncio.create_task(_send(room, box, f"s{i}")) for i in range(100)]
    await asyncio.sleep(0.3)
    # 100 first asks (they came together), then one ask per back-off, not 100 of them:
    # a sender each on its own would have asked some 15 times in 0.3 s, 1,500 in all.
    assert 100 < box.asked - 1 < 100 + 0.3 / 0.005
    assert not any(s.done() for s in senders)
    await box.consume(101)  # the consumer makes room: every sender gets in
    assert sorted(await asyncio.gather(*senders)) == [1] * 100
    assert room.lines == {}  # nothing left behind once nobody waits


async def test_senders_that_find_a_line_get_in_first_come_first_served() -> None:
    room, box = WaitingRoom(first=0.001, cap=0.002), Box(2)
    await _send(room, box, "a")
    await _send(room, box, "b")
    senders = []
    for i in range(30):  # one at a time: each joins the line behind the ones before
        senders.append(asyncio.create_task(_send(room, box, f"s{i}")))
        await _in_line(room, i)
    taken = await box.consume(32)
    await asyncio.gather(*senders)
    assert taken == ["a", "b", *(f"s{i}" for i in range(30))]


async def test_room_found_lets_the_line_go_ever_more_at_once() -> None:
    """Once there is room again the line empties in a few round trips, not one by one."""
    room, box = WaitingRoom(first=0.001, cap=0.001), Box(1)
    await _send(room, box, "x")
    senders = [asyncio.create_task(_send(room, box, f"s{i}")) for i in range(500)]
    await _in_line(room, 499)
    box.size = 1000
    box.items.clear()
    await asyncio.wait_for(asyncio.gather(*senders), 5)
    # Refused asks while the line emptied, beside the 500 first ones: the ones in flight
    # grew by an eighth a round trip, and none was refused (there was room for all).
    assert box.asked - 1 - 500 <= 500 + 10
    assert len(box.items) == 500


async def test_while_the_consumer_sets_the_pace_few_asks_are_refused() -> None:
    """A line drained by a slow consumer: an ask is refused once per probe (each 5 ms at
    most) and for about one in eight that get in, beside the first asks of the senders
    that came together. (Letting two go for every one that got in would refuse about
    one ask for each that gets in.)"""
    room, box = WaitingRoom(first=0.005, cap=0.02), Box(10)
    senders = [asyncio.create_task(_send(room, box, f"s{i}")) for i in range(300)]
    await _in_line(room, 250)
    first_asks, started = box.asked, time.monotonic()
    await box.consume(300)
    probes = (time.monotonic() - started) / 0.005
    await asyncio.wait_for(asyncio.gather(*senders), 5)
    refused = box.asked - first_asks - (300 - 10)
    assert refused <= probes + 300 / 8 + 5


@pytest.mark.parametrize("leaves", ["the one probing", "the first in line"])
async def test_a_sender_that_leaves_passes_its_turn_on(leaves: str) -> None:
    room, box = WaitingRoom(first=0.001, cap=0.005), Box(1)
    await _send(room, box, "x")
    items = {asyncio.create_task(_send(room, box, "first")): "first"}  # finds it full: probes
    await asyncio.sleep(0.003)
    assert room.lines["mb"].probing
    for i in range(5):
        items[asyncio.create_task(_send(room, box, f"r{i}"))] = f"r{i}"
        await _in_line(room, i + 1)
    gone = next(
        t for t, item in items.items() if item == ("first" if "probing" in leaves else "r0")
    )
    gone.cancel()  # its deadline passed
    with pytest.raises(asyncio.CancelledError):
        await gone
    del items[gone]
    taken = await box.consume(1 + len(items))
    await asyncio.wait_for(asyncio.gather(*items), 5)
    assert sorted(taken) == sorted(["x", *items.values()])
    assert room.lines == {}


async def test_a_refusal_of_another_kind_reaches_its_sender_and_the_line_goes_on() -> None:
    room, box = WaitingRoom(first=0.001, cap=0.005), Box(1)
    await _send(room, box, "x")
    probing = asyncio.create_task(_send(room, box, "p"))
    await asyncio.sleep(0.003)
    broken = asyncio.create_task(room.send("mb", box.attempt("b", ConnectionError("lost"))))  # type: ignore[arg-type]
    await _in_line(room, 1)
    after = asyncio.create_task(_send(room, box, "after"))
    await _in_line(room, 2)
    box.items.clear()  # room for one: the probe gets in and lets "b" go, which fails
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(broken, 5)
    await asyncio.wait_for(probing, 5)
    box.items.clear()
    await asyncio.wait_for(after, 5)  # the line did not wait for the one that failed
    assert box.items == ["after"]
    assert room.lines == {}


async def test_a_deadline_ends_the_wait_in_line_and_the_line_goes_on() -> None:
    room, box = WaitingRoom(first=0.001, cap=0.005), Box(1)
    await _send(room, box, "x")
    loop = asyncio.get_running_loop()
    probing = asyncio.create_task(_send(room, box, "p"))
    await asyncio.sleep(0.003)
    started = loop.time()
    with pytest.raises(TimeoutError):
        await room.send("mb", box.attempt("late"), started + 0.05)  # type: ignore[arg-type]
    assert 0.05 <= loop.time() - started < 0.5
    box.items.clear()
    assert await asyncio.wait_for(probing, 5) == 1
    assert box.items == ["p"] and room.lines == {}


async def test_an_ask_in_flight_at_the_deadline_is_not_cut_short() -> None:
    """What the server took is never reported as refused: the deadline ends the wait,
    not an ask that is on its way."""
    room = WaitingRoom(first=0.001, cap=0.005)
    loop = asyncio.get_running_loop()

    async def slow() -> str:
        await asyncio.sleep(0.1)  # a round trip longer than the time left
        return "taken"

    assert await room.send("mb", slow, loop.time() + 0.01) == "taken"
