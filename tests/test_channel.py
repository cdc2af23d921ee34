"""The parent-child channel and the hub's verbs over it, in one process (both ends real)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from tactor.errors import NoProvider, TransportClosed, TransportError
from tactor.transports.base import endpoint_mailbox
from tactor.transports.channel import Channel, decode_frame, encode_frame
from tactor.transports.hub_client import HubClient
from tactor.transports.memory import MemoryTransport
from tests.helpers import eventually


def test_a_frame_keeps_its_header_and_payloads_byte_for_byte() -> None:
    payloads = (b"", b"\x00\xff" * 3, b'{"json": true}')
    frame = encode_frame(["q", 1, "deliver", None], payloads)
    header, got = decode_frame(frame[4:])
    assert header == ["q", 1, "deliver", None] and tuple(got) == payloads


async def _pair(hub_owner: MemoryTransport) -> tuple[Channel, HubClient, asyncio.Task[None]]:
    ours, theirs = socket.socketpair()
    parent, child = await Channel.open(ours), await Channel.open(theirs)
    assert await hub_owner.serve_child(parent) is None
    client = HubClient(child)
    readers = asyncio.gather(parent.run(), child.run())
    return parent, client, asyncio.ensure_future(readers)


async def test_the_hub_serves_a_child_and_releases_what_it_held_when_the_channel_closes() -> None:
    async with MemoryTransport() as parent_side:
        parent, client, readers = await _pair(parent_side)
        with pytest.raises(NoProvider):
            await client.deliver(endpoint_mailbox("svc"), b"x", endpoint="svc")
        await client.register("svc", "child-1")
        assert await parent_side.providers("svc") == ["child-1"]
        consumer = await client.consume([endpoint_mailbox("svc")], "child-1")
        await parent_side.deliver(endpoint_mailbox("svc"), b"job")
        taken = await consumer.receive()
        assert (taken.payload, taken.attempts) == (b"job", 1)
        with pytest.raises(TransportError, match="no verb 'nope'"):
            await client.request("nope")
        client.channel.close()  # as when the child dies: nothing acknowledged, nothing closed
        await readers
        await eventually(lambda: parent_side.providers("svc"), lambda live: live == [])
        again = await parent_side.consume([endpoint_mailbox("svc")], "other")
        redelivered = await asyncio.wait_for(again.receive(), 5)
        assert (redelivered.payload, redelivered.attempts) == (b"job", 2)
        with pytest.raises(TransportClosed):
            await client.providers("svc")
        assert parent.closed.is_set()


async def test_a_get_cancelled_in_the_child_with_its_item_on_the_way_gives_it_back() -> None:
    async with MemoryTransport() as parent_side:
        _, client, readers = await _pair(parent_side)
        try:
            # Cancelled after 1 turn: the parent's answer is written, not read; after 2: it
            # is read just after the cancel; after 3: read before it, the get not yet woken.
            for turns in (1, 2, 3):
                get = asyncio.ensure_future(client.queue_get("jobs", None))
                await eventually(lambda: _getters(parent_side, "jobs"), lambda n: n == 1)
                await parent_side.queue_put("jobs", b"one", 0)  # handed to the child's get
                for _ in range(turns):
                    await asyncio.sleep(0)
                assert get.cancel(), turns
                with pytest.raises(asyncio.CancelledError):
                    await get
                assert await client.queue_get("jobs", 5) == b"one", turns
                assert await parent_side.queue_size("jobs") == 0
                assert client._late == {}, turns  # every answer due came, and was taken
        finally:
            client.channel.close()
            await readers


async def _getters(transport: MemoryTransport, queue: str) -> int:
    q = transport.hub.queues.get(queue)
    return 0 if q is None else len(q.getters)


async def _ends() -> tuple[Channel, Channel, asyncio.Future[Any]]:
    """Two channel ends over a socketpair, and their readers."""
    ours, theirs = socket.socketpair()
    left, right = await Channel.open(ours), await Channel.open(theirs)
    return left, right, asyncio.ensure_future(asyncio.gather(left.run(), right.run()))


async def test_frames_cross_whole_in_order_across_reads_and_larger_than_the_buffer() -> None:
    left, right, readers = await _ends()
    got: list[tuple[int, bytes]] = []
    done = asyncio.Event()

    def arrived(header: list[Any], payloads: list[bytes]) -> None:
        got.append((header[1], payloads[0]))
        if header[1] == 99:
            done.set()

    right.handlers["x"] = arrived
    big = bytes(range(256)) * 12_289  # over 3 MiB: many reads, a larger buffer, then back
    for i in range(100):  # sent in one turn: they leave in one write
        left.send(["x", i], big if i in (3, 50) else f"small {i}".encode())
    await asyncio.wait_for(done.wait(), 10)
    assert [i for i, _ in got] == list(range(100))
    assert got[3][1] == big and got[50][1] == big and got[99][1] == b"small 99"
    left.close()
    await asyncio.wait_for(readers, 5)  # EOF closes the other end
    assert right.closed.is_set()


async def test_an_unreadable_frame_closes_the_channel(caplog: pytest.LogCaptureFixture) -> None:
    ours, theirs = socket.socketpair()
    channel = await Channel.open(ours)
    reader = asyncio.ensure_future(channel.run())
    theirs.setblocking(False)
    theirs.send(b"\x00\x00\x00\x0a\x00\x00\x00\x06{nope}")  # a header that is not JSON
    await asyncio.wait_for(reader, 5)
    assert channel.closed.is_set()
    assert "unreadable frame" in caplog.text
    theirs.close()
