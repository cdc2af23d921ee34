"""The transport contract itself, below the actor layer, on every transport."""

from __future__ import annotations

import asyncio

import pytest

from tactor import Actor, ActorSystem, NoProvider
from tactor.transports import open_transport
from tactor.transports.base import provider_mailbox
from tests.helpers import eventually


def _with(url: str, **options: object) -> str:
    sep = "&" if "?" in url else "?"
    return url + sep + "&".join(f"{k}={v}" for k, v in options.items())


async def test_deliver_to_providers_reaches_every_live_provider_with_room(url: str) -> None:
    transport = open_transport(_with(url, mailbox_size=2))
    await transport.start()
    try:
        for provider in ("b", "a", "c"):
            await transport.register("svc", provider)
        await transport.register("other", "z")
        await transport.deliver(provider_mailbox("c"), b"1")
        await transport.deliver(provider_mailbox("c"), b"2")  # c's mailbox is now full

        reached, full = await transport.deliver_to_providers("svc", b"hello")
        assert (sorted(reached), full) == (["a", "b"], ["c"])
        live = await transport.providers("svc")
        assert reached == [p for p in live if p in reached]  # in the registry's order

        await transport.unregister("svc", "b")  # gone: no longer reached
        reached, full = await transport.deliver_to_providers("svc", b"again")
        assert (reached, full) == (["a"], ["c"])
        assert await transport.deliver_to_providers("nobody", b"x") == ([], [])

        consumer = await transport.consume([provider_mailbox("a")], "a")
        got = [(await consumer.receive()).payload for _ in range(2)]
        assert got == [b"hello", b"again"]
        consumer_b = await transport.consume([provider_mailbox("b")], "b")
        first = await consumer_b.receive()
        assert first.payload == b"hello"  # b got only the one sent while it was live
        await first.ack()
        await consumer.close()
        await consumer_b.close()
    finally:
        await transport.close()


async def test_senders_waiting_for_room_all_get_in_and_ask_the_server_little(
    url: str,
) -> None:
    """Twenty sends wait for room in a full mailbox; all get in once a consumer takes.

    On a server that refuses a full mailbox's messages (Redis, NATS), they wait in one
    line (see waiting_room.py): while it stays full, one of them asks, after a back-off
    (about eight refusals in half a second). Each asking on its own made some 150.
    """
    transport = open_transport(_with(url, mailbox_size=2))
    await transport.start()
    room = getattr(transport, "waiting_room", None)
    try:
        box = "contract-room"
        await transport.deliver(box, b"a")
        await transport.deliver(box, b"b")  # full now
        senders = []
        for i in range(20):
            senders.append(asyncio.create_task(transport.deliver(box, b"%d" % i)))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        assert not any(sender.done() for sender in senders)
        if room is not None:
            assert 1 <= room.refused <= 12
        consumer = await transport.consume([box], "c")
        got = []
        for _ in range(22):
            delivery = await asyncio.wait_for(consumer.receive(), 10)
            got.append(delivery.payload)
            await delivery.ack()
        await asyncio.wait_for(asyncio.gather(*senders), 10)
        assert sorted(got) == sorted([b"a", b"b", *(b"%d" % i for i in range(20))])
        assert got[:2] == [b"a", b"b"]
        await consumer.close()
    finally:
        await transport.close()


class Many(Actor, name="contract-many"):
    """A provider among hundreds of one endpoint in one node."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.told = 0

    async def which(self) -> int:
        return self.index

    async def tell_me(self) -> None:
        self.told += 1

    async def count(self) -> int:
        return self.told


MANY = 300


async def test_hundreds_of_providers_of_one_endpoint_in_one_node(url: str) -> None:
    """Calls, tells, a broadcast and ``provider=`` calls reach them all; stop and close work.

    On Redis this is what 200 providers in one process could not do (they ran out of
    connections): the node reads every provider's mailboxes through one reader.
    """
    async with ActorSystem(url, timeout=20) as system:
        refs = list(await asyncio.gather(*(system.spawn(Many, i) for i in range(MANY))))
        assert sorted(await system.providers(Many)) == sorted(ref.id for ref in refs)
        result = await system.broadcast(Many.which)
        assert result.complete and sorted(result) == list(range(MANY))
        answers = await asyncio.gather(*(system.call(Many.which) for _ in range(MANY)))
        assert set(answers) <= set(range(MANY))
        for index in (0, MANY // 2, MANY - 1):  # each answers calls addressed to it
            assert await system.call(Many.which, provider=refs[index]) == index
        addressed = await asyncio.gather(
            *(system.call(Many.which, provider=ref) for ref in refs[::7])
        )
        assert addressed == list(range(0, MANY, 7))
        await asyncio.gather(*(system.tell(Many.tell_me) for _ in range(MANY)))
        # Tells are handled in their own time: every one, once (none lost, none twice).
        await eventually(
            lambda: system.broadcast(Many.count), lambda c: c.complete and sum(c) == MANY
        )
        stopped = refs[: MANY // 3]
        await asyncio.gather(*(system.stop(ref) for ref in stopped))
        left = sorted(ref.id for ref in refs[MANY // 3 :])
        assert sorted(await system.providers(Many)) == left
        after = await system.broadcast(Many.which)
        assert after.complete and sorted(after) == list(range(MANY // 3, MANY))
        with pytest.raises(NoProvider):
            await system.call(Many.which, provider=stopped[0], timeout=2)


async def test_registry_lists_endpoints_and_what_providers_registered_with(url: str) -> None:
    transport = open_transport(url)
    await transport.start()
    try:
        assert await transport.endpoints() == []
        await transport.register("svc", "b", b'{"node": "n1"}')
        await transport.register("svc", "a")
        await transport.register("other.name-1", "z", b"\x00bytes")
        assert await transport.endpoints() == ["other.name-1", "svc"]
        entries = await transport.provider_entries("svc")
        assert [e.provider for e in entries] == await transport.providers("svc")
        assert {e.provider: e.info for e in entries} == {"a": b"", "b": b'{"node": "n1"}'}
        (entry,) = await transport.provider_entries("other.name-1")
        assert (entry.provider, entry.info) == ("z", b"\x00bytes")
        assert await transport.provider_entries("nobody") == []

        await transport.unregister("other.name-1", "z")
        assert await transport.endpoints() == ["svc"]
        await transport.register("other.name-1", "z")  # again, with no info this time
        assert [e.info for e in await transport.provider_entries("other.name-1")] == [b""]
    finally:
        await transport.close()
    other = open_transport(url)
    await other.start()
    try:
        assert await other.endpoints() == []  # closing unregistered everything
    finally:
        await other.close()


async def test_a_parked_consumer_is_woken_and_gives_back_what_it_was_handed(url: str) -> None:
    """Push mode: ``receive_or_park`` parks where ``receive`` would wait; a delivery wakes
    it once and is received next; what a parked consumer was handed goes back at close."""
    transport = open_transport(url)
    await transport.start()
    try:
        await transport.register("svc", "p")
        box = provider_mailbox("p")
        consumer = await transport.consume([box], "p", private=[box])
        woken = asyncio.Event()
        assert await consumer.receive_or_park(woken.set) is None  # parked: nothing there
        await transport.deliver(box, b"first", endpoint="svc", provider="p")
        async with asyncio.timeout(10):
            await woken.wait()
            delivery = await consumer.receive_or_park(woken.set)
            while delivery is None:  # a wake may come before what woke it can be taken
                woken.clear()
                await woken.wait()
                delivery = await consumer.receive_or_park(woken.set)
        assert delivery.payload == b"first"
        await delivery.ack()
        woken.clear()
        assert await consumer.receive_or_park(woken.set) is None
        await transport.deliver(box, b"second", endpoint="svc", provider="p")
        async with asyncio.timeout(10):
            await woken.wait()  # handed to the parked consumer (or waiting for it)...
        await consumer.close()  # ...and given back: the next consumer receives it
        again = await transport.consume([box], "p2", private=[box])
        async with asyncio.timeout(10):
            assert (await again.receive()).payload == b"second"
        await again.close()
    finally:
        await transport.close()
