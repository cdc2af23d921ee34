"""A Redis server restarted under a running system: it reconnects and serves again on its own."""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal

import pytest

from tactor import Actor, ActorRef, ActorSystem, CallTimeout, NoProvider, TransportError
from tests.conftest import with_query
from tests.helpers import eventually
from tests.model import PriceChanged, Pricing
from tests.servers import redis_server

pytestmark = [pytest.mark.redis, pytest.mark.slow]


async def answer(system: ActorSystem) -> str | BaseException:
    try:
        return await system.proxy(Pricing, timeout=1.0).where()
    except (TransportError, CallTimeout, NoProvider) as exc:
        return exc


async def test_system_survives_a_redis_restart() -> None:
    with redis_server() as server:
        url = with_query(server.url, prefix="restart", ttl="1", block="0.2", claim_idle="0.2")
        async with ActorSystem(url) as node, ActorSystem(url) as caller:
            ref = await node.spawn(Pricing, "eu")
            events: list[PriceChanged] = []

            async def on_price(event: PriceChanged) -> None:
                events.append(event)

            await caller.subscribe(on_price)
            assert await caller.proxy(Pricing).where() == "eu"

            # A call in flight when Redis dies fails clearly, and no later than its deadline.
            in_flight = asyncio.create_task(caller.proxy(Pricing, timeout=3.0).sleep(0.5))
            await asyncio.sleep(0.1)
            server.kill()
            started = time.monotonic()
            outcome = await asyncio.gather(in_flight, return_exceptions=True)
            assert isinstance(outcome[0], TransportError | CallTimeout), outcome
            assert time.monotonic() - started < 3.5

            # While it is down, calls fail with a typed error, never past their deadline.
            started = time.monotonic()
            down = await answer(caller)
            assert isinstance(down, TransportError | CallTimeout), down
            assert time.monotonic() - started < 1.5

            server.start()  # same port, empty: no keys, no groups, no registry
            # It reconnects, re-registers its provider and serves, without user action.
            await eventually(lambda: answer(caller), lambda r: r == "eu", timeout=15)
            assert await caller.providers(Pricing) == [ref.id]

            # And it re-subscribed: events flow again.
            async def publish_and_count() -> int:
                await node.publish(PriceChanged("a", Decimal(2)))
                return len(events)

            await eventually(publish_and_count, lambda n: n > 0, timeout=10)


async def test_many_calls_in_flight_through_a_restart_end_by_their_deadlines() -> None:
    """64 callers keep calling while Redis is killed and restarted under them: no call
    outlives its deadline, each ends with a result or a typed error, and calls succeed again."""
    with redis_server() as server:
        url = with_query(server.url, prefix="busy", ttl="1", block="0.2", claim_idle="0.2")
        async with ActorSystem(url) as node, ActorSystem(url) as caller:
            await node.spawn(Pricing, "eu")
            await node.spawn(Pricing, "us")
            proxy = caller.proxy(Pricing, timeout=1.0)
            assert await proxy.where() in ("eu", "us")
            stop = asyncio.Event()
            outcomes: list[str] = []
            overdue: list[float] = []

            async def keep_calling() -> None:
                while not stop.is_set():
                    started = time.monotonic()
                    try:
                        await proxy.where()
                        outcomes.append("ok")
                    except (TransportError, CallTimeout, NoProvider) as exc:
                        outcomes.append(type(exc).__name__)
                    took = time.monotonic() - started
                    if took > 1.5:  # the deadline (1 s) plus slack for a loaded machine
                        overdue.append(took)
                    await asyncio.sleep(0)

            callers = [asyncio.create_task(keep_calling()) for _ in range(64)]
            await asyncio.sleep(0.5)
            server.kill()
            await asyncio.sleep(0.5)
            server.start()
            await eventually(lambda: answer(caller), lambda r: r in ("eu", "us"), timeout=15)
            ok_before = outcomes.count("ok")
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*callers)
            assert not overdue, overdue
            assert outcomes.count("ok") > ok_before  # serving again, under the same load
            assert set(outcomes) - {"ok", "TransportError", "CallTimeout", "NoProvider"} == set()
            assert "TransportError" in outcomes or "CallTimeout" in outcomes  # the fault was seen


class Counter(Actor, name="faults-counter"):
    def __init__(self) -> None:
        self.handled = 0

    async def slow_add(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.handled += 1

    async def count(self) -> int:
        return self.handled


async def test_a_tell_handled_while_redis_was_down_is_not_handled_again() -> None:
    """Its acknowledgement waits for Redis; the provider, back, reads what is pending with
    it — the tell among them — and handled it a second time (the soak's duplicates)."""
    aof = ["--appendonly", "yes", "--appendfsync", "always"]
    with redis_server(aof) as server:
        url = with_query(server.url, prefix="twice", ttl="1", block="0.2", claim_idle="0.2")
        async with ActorSystem(url) as node, ActorSystem(url) as caller:
            ref = await node.spawn(Counter)
            await caller.tell(Counter.slow_add, 0.5)
            await asyncio.sleep(0.2)  # it is being handled
            server.kill()  # ...and finishes while Redis is down: its acknowledgement waits
            await asyncio.sleep(0.8)
            server.start()  # the same files: the tell is still pending with the provider
            count = await eventually(
                lambda: answer_count(caller, ref), lambda n: isinstance(n, int), timeout=15
            )
            await asyncio.sleep(0.5)  # time to handle it again, were it taken again
            assert count == await answer_count(caller, ref) == 1


async def test_a_system_whose_redis_is_gone_closes_at_once() -> None:
    """Its clean-up (unregister, delete the private mailbox, the node's keys) fails at once
    on a refused connection, and what it would remove expires: the close does not wait."""
    with redis_server() as server:
        url = with_query(server.url, prefix="gone", ttl="1", block="0.2", claim_idle="0.2")
        system = ActorSystem(url)
        await system.start()
        try:
            await system.spawn(Pricing, "eu")
            assert await answer(system) == "eu"
        finally:
            server.kill()
            closing = time.monotonic()
            await system.close()
        assert time.monotonic() - closing < 3


async def test_a_redis_out_of_memory_refuses_typed_and_serves_again_once_freed() -> None:
    """A Redis at ``maxmemory`` (with ``noeviction``, its default) refuses writes: calls and
    tells fail at once with a TransportError that says why; the providers' heartbeats are
    refused too, so they leave the registry; once memory is freed the same systems serve
    again, the providers registered again by themselves."""
    with redis_server() as server:
        admin = server.client()
        url = with_query(server.url, prefix="oom", ttl="1", block="0.2", claim_idle="0.2")
        async with ActorSystem(url) as node, ActorSystem(url) as caller:
            ref = await node.spawn(Pricing, "eu")
            assert await answer(caller) == "eu"
            admin.config_set("maxmemory", "1mb")  # below what Redis uses: writes are refused
            try:
                started = time.monotonic()
                refused = await answer(caller)
                assert isinstance(refused, TransportError), refused
                assert "maxmemory" in str(refused) and time.monotonic() - started < 0.5
                with pytest.raises(TransportError, match="maxmemory"):
                    await caller.tell(Pricing.restock, "a", 1)
                # Reads still work: the registry says the provider is gone (no heartbeat).
                await eventually(lambda: caller.providers(Pricing), lambda ids: ids == [])
            finally:
                admin.config_set("maxmemory", "0")
            await eventually(lambda: answer(caller), lambda r: r == "eu", timeout=15)
            assert await caller.providers(Pricing) == [ref.id]
            await caller.tell(Pricing.restock, "a", 2)
            assert await caller.proxy(Pricing).stock_of("a") == 2  # the refused tell: never in


async def answer_count(caller: ActorSystem, ref: ActorRef[Counter]) -> int | BaseException:
    try:
        return await caller.call(Counter.count, provider=ref, timeout=1.0)
    except (TransportError, CallTimeout, NoProvider) as exc:
        return exc


async def test_an_outage_is_logged_once_per_reader_not_once_per_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Readers retry every 50 ms to 2 s while Redis is down; each says so once, and once
    more when Redis serves it again (an operator's log is not a line per retry)."""
    caplog.set_level(logging.WARNING, logger="tactor")
    with redis_server() as server:
        url = with_query(server.url, prefix="outage", ttl="1", block="0.2", claim_idle="0.2")
        async with ActorSystem(url) as node:
            await node.spawn(Pricing, "eu")
            assert await answer(node) == "eu"
            server.kill()
            await asyncio.sleep(4)  # some ten retries of each reader
            server.start()
            await eventually(lambda: answer(node), lambda r: r == "eu", timeout=15)
            await asyncio.sleep(0.5)

    def lines(text: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if text in r.getMessage()]

    lost = lines("Redis connection lost while")
    readers = {line.split(":")[0] for line in lost}  # the node's reader, its consumers
    assert lost and len(lost) == len(readers), lost
    assert lines("Redis serves the mailbox"), caplog.text
