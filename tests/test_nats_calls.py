"""The NATS call path: what it keeps while it takes fewer steps — a full mailbox still
refuses with the typed error, an append left unanswered still fails typed, and the
mailbox stream's keeper stays out of every mailbox."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import orjson
import pytest

from tactor import Actor, ActorSystem, MailboxFull, TransportClosed, TransportError
from tactor.transports import open_transport
from tactor.transports.nats import NatsTransport, appends
from tactor.transports.nats.connection import api
from tests.conftest import drop_nats, require_nats, with_query
from tests.helpers import eventually, nats_nodes_one_hanging


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
            # The mailbox is empty; the stream holds the keeper, once, written last. The
            # server removes an acknowledged message on its own time (nats-py sends the
            # ack without waiting for it), so the check waits for the state to settle.
            keeper = {transport.names.keeper: 1}
            state = await eventually(
                lambda: _state(watcher), lambda state, k=keeper: state.get("subjects") == k
            )
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


class Quick(Actor, name="nats-calls-quick"):
    async def echo(self, value: int) -> int:
        return value


async def _pulls_seen(transport: NatsTransport) -> tuple[list[Any], list[dict[str, Any]]]:
    """Subscriptions that record every request for messages (its body) sent to the
    namespace's mailbox stream: a pull request, or an acknowledgement that asks for the
    next (``+NXT``)."""
    seen: list[dict[str, Any]] = []

    async def record(msg: Any) -> None:
        seen.append(orjson.loads(msg.data) if msg.data else {})

    async def record_next(msg: Any) -> None:
        if msg.data.startswith(b"+NXT"):
            body = msg.data[len(b"+NXT") :].strip()
            seen.append(orjson.loads(body) if body else {})

    stream = transport.names.mailboxes
    subs = [
        await transport.nc.subscribe(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>", cb=record),
        await transport.nc.subscribe(f"$JS.ACK.{stream}.>", cb=record_next),
    ]
    await transport.nc.flush()
    return subs, seen


@pytest.mark.parametrize("prefetch", [None, "1"])
async def test_a_fast_provider_takes_what_waits_several_per_pull(
    namespace: str, prefetch: str | None
) -> None:
    """With calls waiting in its mailbox, a provider with a quick handler takes several
    per pull (each pull only what waits then: it does not wait at the server for more);
    ``prefetch=1`` takes one at a time. Every call is answered once either way. (A wide
    ``prefetch_window``: "quick" must hold on a loaded or traced machine too.)"""
    url = with_query(namespace, prefetch_window="0.05")
    url = url if prefetch is None else with_query(url, prefetch=prefetch)
    async with ActorSystem(url) as node, ActorSystem(url, timeout=30) as caller:
        await node.spawn(Quick)
        transport = caller.transport
        assert isinstance(transport, NatsTransport)
        subs, pulls = await _pulls_seen(transport)
        proxy = caller.proxy(Quick)
        assert await asyncio.gather(*(proxy.echo(i) for i in range(400))) == list(range(400))
        for sub in subs:
            await sub.unsubscribe()
    several = [pull for pull in pulls if pull.get("batch", 1) > 1]
    if prefetch == "1":
        assert several == [] and len(pulls) >= 400
    else:
        assert several, pulls
        assert all(pull.get("no_wait") is True for pull in several)
        assert all(pull["batch"] <= 32 for pull in several)  # the default prefetch
        assert len(pulls) < 200, len(pulls)  # not a pull per call


async def test_messages_taken_ahead_of_a_stalled_one_go_to_an_idle_provider(
    namespace: str,
) -> None:
    """A consumer that took messages ahead and then stalls on the one in hand gives them
    back at its second heartbeat, their attempts unchanged, and another consumer takes them."""
    url = with_query(namespace, ttl="0.6")  # a heartbeat every 0.2 s
    stalled, idle = open_transport(url), open_transport(url)
    assert isinstance(stalled, NatsTransport) and isinstance(idle, NatsTransport)
    await stalled.start()
    await idle.start()
    try:
        for i in range(10):
            await stalled.deliver("ep:svc", str(i).encode())
        consumer = await stalled.consume(["ep:svc"], "a")
        first = await consumer.receive()  # one pull of one: it says 9 wait behind it
        consumer._handling = 1e-5  # type: ignore[attr-defined]  # learned: a quick handler
        await first.ack()  # and asks for the next: one pull takes the 9 that wait
        in_hand = await consumer.receive()
        assert (first.payload, in_hand.payload) == (b"0", b"1")

        # The other 8 come with the same pull (maybe in later reads of the socket).
        async def arrived() -> int:
            return sum(map(len, consumer._arrived))  # type: ignore[attr-defined]

        await eventually(arrived, lambda n: n == 8)
        other = await idle.consume(["ep:svc"], "b")  # idle, while the first stalls on "1"
        got = []
        async with asyncio.timeout(5):
            while len(got) < 8:
                delivery = await other.receive()
                got.append(delivery.payload)
                assert delivery.attempts == 1  # given back as they were
                await delivery.ack()
        assert sorted(got) == [str(i).encode() for i in range(2, 10)]
        assert await arrived() == 0
        await in_hand.ack()
        await consumer.close()
        await other.close()
    finally:
        await stalled.close()
        await idle.close()


async def test_a_message_in_hand_is_kept_in_progress_while_the_registrys_beat_hangs(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a cluster re-elects the leader of the registry's stream, a beat waits out its
    timeout. The mailboxes' upkeep goes on meanwhile: a message whose handler is slow is
    still told in progress, and no other consumer is handed it after ``ttl``."""
    url = with_query(namespace, ttl="0.6")  # ack_wait 0.6 s; upkeep every 0.2 s
    async with nats_nodes_one_hanging(url, monkeypatch, "beat") as (slow, other):
        await slow.deliver("ep:svc", b"slow")
        consumer = await slow.consume(["ep:svc"], "a")
        in_hand = await consumer.receive()
        assert in_hand.payload == b"slow"
        idle = await other.consume(["ep:svc"], "b")
        with pytest.raises(TimeoutError):  # 3 ack waits: it would have been handed over
            async with asyncio.timeout(1.8):
                await idle.receive()
        await in_hand.ack()
        await consumer.close()
        await idle.close()
