"""The blocking facade: synchronous code drives the async system through a loop thread it owns."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import threading
from decimal import Decimal

import pytest

from tactor import (
    Actor,
    BlockingQueue,
    BlockingSystem,
    BroadcastResult,
    CallTimeout,
    NotRunning,
    RemoteError,
    WouldBlock,
)
from tests.model import Item, PriceChanged, Pricing


def loop_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("tactor")]


def test_blocking_calls_on_every_transport(url: str) -> None:
    with BlockingSystem(url) as system:
        eu = system.spawn(Pricing, "eu")
        system.spawn(Pricing, region="us")
        live = system.providers(Pricing)
        assert len(live) == 2 and eu.id in live
        assert system.call(Pricing.quote, [Item("a", 2)], timeout=2.0) == Decimal("3.00")
        assert system.call(Pricing.where, provider=eu) == "eu"
        totals = system.broadcast(Pricing.quote, [Item("a", 2)], timeout=2.0)
        assert isinstance(totals, BroadcastResult)
        assert list(totals) == [Decimal("3.00")] * 2 and totals.complete
        system.tell(Pricing.restock, "a", 5, provider=eu)
        assert system.call(Pricing.stock_of, "a", provider=eu) == 5
        reached = system.publish(PriceChanged("a", Decimal(1)))
        assert reached in (2, None)
        with pytest.raises(RemoteError, match="boom"):
            system.call(Pricing.crash, "boom")
        with pytest.raises(CallTimeout):
            system.call(Pricing.sleep, 1.0, timeout=0.1)
        system.stop(eu)
        assert eu.id not in system.providers(Pricing)
    assert loop_threads() == []
    with pytest.raises(NotRunning):
        system.call(Pricing.where)


def test_blocking_stats(url: str) -> None:
    with BlockingSystem(url) as system:
        system.spawn(Pricing, "eu")
        with pytest.raises(RemoteError, match="boom"):
            system.call(Pricing.crash, "boom")
        stats = system.stats()
        assert stats.method("pricing", "crash").handler_failed == {"builtins.ValueError": 1}  # type: ignore[union-attr]


def test_blocking_operating_api(url: str) -> None:
    with BlockingSystem(url) as system:
        eu = system.spawn(Pricing, "eu")
        (listed,) = system.endpoints()
        assert [p.id for p in listed.providers] == [eu.id]
        assert system.endpoint_info("pricing").providers == listed.providers
        items = [{"sku": "a", "qty": 2}]
        assert system.call_json("pricing", "quote", [items]) == "3.00"
        assert list(system.broadcast_json("pricing", "where")) == ["eu"]
        system.tell_json("pricing", "restock", ["a", 2])
        assert system.call_json("pricing", "stock_of", ["a"]) == 2
        assert system.publish_json("nobody.listens", {}) in (0, None)
        assert system.dead_letters("pricing") == []


def test_explicit_start_and_close() -> None:
    system = BlockingSystem().start()
    try:
        assert system.start() is system  # idempotent
        system.spawn(Pricing, "eu")
        assert system.call(Pricing.where) == "eu"
        assert len(loop_threads()) == 1
    finally:
        system.close()
    assert loop_threads() == []
    system.close()  # idempotent


def test_blocking_call_inside_an_event_loop_raises_would_block() -> None:
    with BlockingSystem() as system:
        system.spawn(Pricing, "eu")

        async def misuse() -> None:
            system.call(Pricing.where)

        with pytest.raises(WouldBlock, match="async API"):
            asyncio.run(misuse())
        assert system.call(Pricing.where) == "eu"  # the system is unharmed


class Reentrant(Actor, name="reentrant"):
    """An actor that (wrongly) uses the blocking facade from inside its own loop."""

    blocking: BlockingSystem | None = None

    async def misuse(self) -> str:
        assert Reentrant.blocking is not None
        try:
            Reentrant.blocking.call(Pricing.where)
        except WouldBlock as exc:
            return f"refused: {exc}"
        return "deadlock avoided by luck"


def test_blocking_call_from_an_actor_in_the_loop_thread_is_refused() -> None:
    with BlockingSystem() as system:
        Reentrant.blocking = system
        system.spawn(Pricing, "eu")
        system.spawn(Reentrant)
        answer = system.call(Reentrant.misuse, timeout=5.0)
        assert answer.startswith("refused:")


def test_sync_event_handlers_run_in_worker_threads() -> None:
    got: list[tuple[str, str]] = []
    done = threading.Event()

    def on_price(event: PriceChanged) -> None:
        got.append((event.sku, threading.current_thread().name))
        done.set()

    with BlockingSystem() as system:
        system.subscribe(on_price)
        system.publish(PriceChanged("a", Decimal(1)))
        assert done.wait(5)
    assert got[0][0] == "a"
    assert not got[0][1].startswith("tactor-loop")


def _child(url: str, queue: multiprocessing.Queue[object]) -> None:
    inherited = loop_threads()
    with BlockingSystem(url) as system:
        system.spawn(Pricing, "child")
        answer = system.call(Pricing.where, timeout=5.0)
    queue.put((inherited, answer, os.getpid()))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_children_start_their_own_system(url: str, method: str) -> None:
    if url.startswith("memory://"):
        url = "memory://"  # a child cannot share a parent's in-process hub
    context = multiprocessing.get_context(method)
    with BlockingSystem(url) as system:
        system.spawn(Pricing, "parent")
        results: multiprocessing.Queue[object] = context.Queue()
        child = context.Process(target=_child, args=(url, results))
        child.start()
        inherited, answer, pid = results.get(timeout=30)  # type: ignore[misc]
        child.join(30)
        assert child.exitcode == 0
        assert inherited == []  # no loop thread crossed the fork
        assert answer in ("child", "parent")
        assert pid != os.getpid()
        assert system.providers(Pricing) == [r.id for r in system.aio.refs()]  # the child left
        assert system.call(Pricing.where) == "parent"


def drain(q: queue.Queue[int] | BlockingQueue[int]) -> list[int]:
    """Code written for queue.Queue: consume until Empty, marking each item done."""
    got = []
    while True:
        try:
            got.append(q.get(timeout=0.2))
        except queue.Empty:
            return got
        q.task_done()


def test_blocking_queue_is_a_drop_in_for_queue_queue(url: str) -> None:
    with BlockingSystem(url) as system:
        jobs = system.queue("jobs", int, maxsize=3)
        assert isinstance(jobs, BlockingQueue) and jobs.maxsize == 3
        assert jobs.empty() and jobs.qsize() == 0
        for n in range(3):
            jobs.put(n)
        assert jobs.full()
        with pytest.raises(queue.Full):
            jobs.put_nowait(99)
        with pytest.raises(queue.Full):
            jobs.put(99, timeout=0.1)
        # A producer thread and a consumer written for queue.Queue, unchanged.
        producer = threading.Thread(target=lambda: [jobs.put(n) for n in range(3, 10)])
        producer.start()
        got = drain(jobs)
        producer.join()
        assert got == list(range(10))
        jobs.join()  # every item was marked done
        with pytest.raises(queue.Empty):
            jobs.get_nowait()
        with pytest.raises(ValueError, match="too many times"):
            jobs.task_done()
        jobs.delete()


@pytest.mark.in_process  # functions served by the module API are classes made at run time
def test_module_level_queue_like_pymq(url: str) -> None:
    import tactor

    tactor.init(url)
    try:
        q = tactor.queue("my_queue")
        q.put({"id": 1, "tags": ["a"]})
        assert q.get(timeout=1) == {"id": 1, "tags": ["a"]}
        q.task_done()
        typed = tactor.queue("my_items", Item)
        typed.put(Item("a", 2))
        assert typed.get(timeout=1) == Item("a", 2)
        typed.task_done()
        q.delete()
        typed.delete()
    finally:
        tactor.shutdown()
