"""The NATS call path: what it keeps while it takes fewer steps — a full mailbox still
refuses with the typed error, an append left unanswered still fails typed, and the
mailbox stream's keeper stays out of every mailbox."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from tactor import Actor, ActorSystem, MailboxFull, TransportClosed, TransportError
from tactor.transports import open_transport
from tactor.transports.nats import NatsTransport, appends
from tactor.transports.nats.connection import api
from tests.conftest import drop_nats, require_nats, with_query


@pytest.fixture
def namespace() -> Iterator[str]:
    """A NATS namespace of this test's own (its base URL with a fresh prefix)."""
    base = require_nats()
    prefix = f"tactor-test-{uuid.uuid4().hex[:12]}"
    yield with_query(base, prefix=prefix)
    drop_nats(base, prefix)


async def _state(transport: NatsTransport) -> dict[str, Any]:
    """The mailbox stream's state, with how many messages each subject holds."""
    info = await api(
        transport.nc, f"STREAM.INFO.{transport.names.mailboxes}", {"subjects_filter": ">"}
    )
    state: dict[str, Any] = info.get("state", {})
    return state


async def _subjects(transport: NatsTransport) -> dict[str, Any]:
    subjects: dict[str, Any] = (await _state(transport)).get("subjects") or {}
    return subjects


@pytest.mark.parametrize("size", ["1024", "1"])  # the keeper's subject is bound like a mailbox
async def test_the_keeper_is_written_after_appends_and_never_delivered(
    namespace: str, size: str
) -> None:
    namespace = with_query(namespace, mailbox_size=size)
    transport = open_transport(namespace)
    assert isinstance(transport, NatsTransport)
    await transport.start()
    watcher = open_transport(namespace)
    assert isinstance(watcher, NatsTransport)
    await watcher.start()
    try:
        consumer = await transport.consume(["ep:svc"], "c")
        await transport.renew_keeper()  # nothing appended yet: nothing written
        assert await _subjects(watcher) == {}
        for payload in (b"one", b"two"):
            await transport.deliver("ep:svc", payload)
            delivery = await consumer.receive()
            assert delivery.payload == payload  # the mailbox's own messages only
            await delivery.ack()
            await transport.renew_keeper()
            # The mailbox is empty; the stream holds the keeper, once, written last.
            state = await _state(watcher)
            assert state["subjects"] == {transport.names.keeper: 1}
            assert state["first_seq"] == state["last_seq"]
        await consumer.close()
    finally:
        await transport.close()
    assert await _subjects(watcher) == {}  # a closing node drops it
    await watcher.close()


class Gated(Actor, name="nats-calls-gated"):
    """Holds each message until its gate opens."""

    instances: ClassVar[list[Gated]] = []

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.seen: list[str] = []
        Gated.instances.append(self)

    async def record(self, item: str) -> None:
        await self.gate.wait()
        self.seen.append(item)

    async def echo(self, item: str) -> str:
        await self.gate.wait()
        return item


async def test_a_full_mailbox_refuses_calls_and_tells_with_mailbox_full(namespace: str) -> None:
    async with ActorSystem(with_query(namespace, mailbox_size="2"), timeout=10) as system:
        await system.spawn(Gated)
        gated = Gated.instances[-1]
        # The mailbox holds 2, the one in hand among them (JetStream keeps it until acknowledged).
        for item in ("in hand", "a"):
            await system.tell(Gated.record, item)
        waiting = asyncio.create_task(system.tell(Gated.record, "waits for room", timeout=10))
        with pytest.raises(MailboxFull):
            await system.tell(Gated.record, "refused", timeout=0.3)
        with pytest.raises(MailboxFull):
            await system.call(Gated.echo, "refused", timeout=0.3)
        assert not waiting.done()
        gated.gate.set()
        await waiting  # room came: accepted
        assert await system.call(Gated.echo, "after") == "after"
        assert gated.seen == ["in hand", "a", "waits for room"]


async def test_an_append_left_unanswered_fails_typed(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An append whose answer never comes fails as a request's timeout did (at the next
    append or heartbeat past its patience), and one still waiting when the transport
    closes fails with TransportClosed."""
    transport = open_transport(namespace)
    assert isinstance(transport, NatsTransport)
    await transport.start()
    silent = f"{transport.names.subject_root}.silent"
    swallowed = await transport.nc.subscribe(silent)  # takes appends there, answers none
    try:
        monkeypatch.setattr(appends, "PATIENCE", 0.0)  # each append overdue at once
        waiting = asyncio.create_task(transport.publish_to_stream(silent, b"x"))
        await swallowed.next_msg(timeout=5)  # it was sent
        transport.appends.expire()
        with pytest.raises(TransportError, match="TimeoutError"):
            await waiting
        monkeypatch.setattr(appends, "PATIENCE", 60.0)
        waiting = asyncio.create_task(transport.publish_to_stream(silent, b"y"))
        await swallowed.next_msg(timeout=5)
    finally:
        await swallowed.unsubscribe()
        await transport.close()
    with pytest.raises(TransportClosed):
        await waiting
