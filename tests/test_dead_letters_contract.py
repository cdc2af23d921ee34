"""The transport contract of attempts and dead letters, below the actor layer, everywhere."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tactor.transports import Transport, open_transport
from tests.conftest import with_query

BOX = "ep:svc"


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Transport]:
    transport = open_transport(url)
    await transport.start()
    try:
        yield transport
    finally:
        await transport.close()


async def test_a_delivery_counts_its_attempts_across_consumers_that_did_not_ack(url: str) -> None:
    async with opened(url) as transport:
        await transport.deliver(BOX, b"poison")
        for attempt in (1, 2, 3):
            consumer = await transport.consume([BOX], f"c{attempt}")
            delivery = await consumer.receive()
            assert (delivery.payload, delivery.attempts) == (b"poison", attempt)
            await consumer.close()  # gone without acknowledging: it goes back, counted
        consumer = await transport.consume([BOX], "last")
        delivery = await consumer.receive()
        assert delivery.attempts == 4
        await delivery.ack()
        await transport.deliver(BOX, b"next")
        after = await consumer.receive()
        assert (after.payload, after.attempts) == (b"next", 1)  # acknowledged: not seen again
        await after.ack()
        await consumer.close()


async def test_only_the_delivery_in_hand_counts_when_a_consumer_closes(url: str) -> None:
    """Deliveries are handled one at a time, in order: those behind the oldest were not begun."""
    async with opened(url) as transport:
        for payload in (b"a", b"b", b"c"):
            await transport.deliver(BOX, payload)
        first = await transport.consume([BOX], "first")
        assert [(await first.receive()).payload for _ in range(2)] == [b"a", b"b"]
        await first.close()
        second = await transport.consume([BOX], "second")
        got = [await second.receive() for _ in range(3)]
        assert sorted((d.payload, d.attempts) for d in got) == [(b"a", 2), (b"b", 1), (b"c", 1)]
        for delivery in got:
            await delivery.ack()
        await second.close()


async def test_a_dead_letter_is_moved_aside_acknowledged_and_kept(url: str) -> None:
    async with opened(url) as transport:
        await transport.deliver(BOX, b"bad")
        await transport.deliver(BOX, b"good")
        consumer = await transport.consume([BOX], "c")
        bad = await consumer.receive()
        before = time.time()
        assert await bad.dead_letter("tried", attempts=3, into=BOX, keep=10) == 0
        good = await consumer.receive()
        assert good.payload == b"good"
        await good.ack()
        await consumer.close()  # the dead letter was acknowledged: nothing goes back
        (letter,) = await transport.dead_letters(BOX)
        assert (letter.payload, letter.attempts, letter.reason) == (b"bad", 3, "tried")
        assert before - 1 <= letter.at <= time.time() + 1
        assert await transport.dead_letters("ep:other") == []

        await transport.deliver(BOX, b"marker")
        again = await transport.consume([BOX], "again")
        marker = await again.receive()
        assert marker.payload == b"marker"  # "bad" did not come back
        await marker.ack()
        await again.close()


async def test_dead_letters_keep_the_newest(url: str) -> None:
    async with opened(url) as transport:
        consumer = await transport.consume([BOX], "c")
        dropped = []
        for n in range(4):
            await transport.deliver(BOX, b"%d" % n)
            delivery = await consumer.receive()
            dropped.append(await delivery.dead_letter("r", attempts=1, into=BOX, keep=2))
        assert dropped == [0, 0, 1, 1]
        letters = await transport.dead_letters(BOX)
        assert [letter.payload for letter in letters] == [b"2", b"3"]  # oldest first
        assert len({letter.id for letter in letters}) == 2
        await consumer.close()


async def test_replay_and_discard(url: str) -> None:
    async with opened(url) as transport:
        consumer = await transport.consume([BOX], "c")
        for payload in (b"again", b"gone"):
            await transport.deliver(BOX, payload)
            delivery = await consumer.receive()
            await delivery.dead_letter("r", attempts=5, into=BOX, keep=10)
        replayed, discarded = await transport.dead_letters(BOX)

        assert await transport.replay_dead_letter(BOX, replayed.id)
        back = await consumer.receive()
        assert (back.payload, back.attempts) == (b"again", 1)  # counted afresh
        await back.ack()
        assert not await transport.replay_dead_letter(BOX, replayed.id)  # once only

        assert await transport.discard_dead_letter(BOX, discarded.id)
        assert not await transport.discard_dead_letter(BOX, discarded.id)
        assert not await transport.discard_dead_letter(BOX, "no-such-letter")
        assert not await transport.replay_dead_letter(BOX, "no-such-letter")
        assert await transport.dead_letters(BOX) == []
        await consumer.close()


async def test_a_replay_into_a_full_mailbox_is_taken_at_once(url: str) -> None:
    """Like a redelivery, a replay does not wait for room: the mailbox goes over its bound."""
    async with opened(with_query(url, mailbox_size="1")) as transport:
        consumer = await transport.consume([BOX], "c")
        await transport.deliver(BOX, b"bad")
        delivery = await consumer.receive()
        await delivery.dead_letter("r", attempts=2, into=BOX, keep=10)
        await transport.deliver(BOX, b"filler")  # the mailbox (size 1) is full now
        (letter,) = await transport.dead_letters(BOX)
        assert await transport.replay_dead_letter(BOX, letter.id)
        assert await transport.dead_letters(BOX) == []
        got = [await consumer.receive() for _ in range(2)]
        assert [(d.payload, d.attempts) for d in got] == [(b"filler", 1), (b"bad", 1)]
        for delivery in got:
            await delivery.ack()
        await consumer.close()


async def test_dead_letters_outlive_the_transport_that_made_them(url: str) -> None:
    async with opened(url) as keeper:  # memory://NAME: the hub lives while a transport uses it
        async with opened(url) as transport:
            await transport.deliver(BOX, b"kept")
            consumer = await transport.consume([BOX], "c")
            delivery = await consumer.receive()
            await delivery.dead_letter("r", attempts=1, into=BOX, keep=10)
        async with opened(url) as later:
            assert [letter.payload for letter in await later.dead_letters(BOX)] == [b"kept"]
        assert len(await keeper.dead_letters(BOX)) == 1


def test_every_transport_takes_the_system_options_from_its_url(url: str) -> None:
    transport = open_transport(with_query(url, max_deliveries="3", max_dead_letters="7"))
    assert (transport.max_deliveries, transport.max_dead_letters) == (3, 7)
    plain = open_transport(url)
    assert (plain.max_deliveries, plain.max_dead_letters) == (None, None)
