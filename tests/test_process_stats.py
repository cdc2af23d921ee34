"""A node's ``stats()`` counts what its process providers did, across their restarts."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tactor import ActorRef, ActorSystem, CallTimeout, MethodStats, NoProvider, SystemStats
from tactor.prometheus import StatsCollector
from tests.helpers import eventually
from tests.process_model import Tally
from tests.test_processes import _alive

pytestmark = pytest.mark.slow

#: The transports a child is served on: the parent's hub, or the same Redis.
on_each_transport = pytest.mark.parametrize("url", ["memory", "redis"], indirect=True)


def work(stats: SystemStats) -> MethodStats:
    entry = stats.method("tally", "work")
    assert entry is not None, stats
    return entry


async def _stats_once_handled(system: ActorSystem, handled: int) -> SystemStats:
    """The stats once ``handled`` works were: a provider's count follows its reply."""
    return await eventually(system.stats, lambda s: work(s).handled >= handled)


@on_each_transport
async def test_what_a_child_handles_counts_in_its_parents_stats(url: str) -> None:
    async with ActorSystem(url) as system:
        ref = await system.processes().spawn(Tally)
        tally = system.proxy(Tally)
        assert [await tally.work(n) for n in range(3)] == [0, 1, 2]
        with pytest.raises(Exception, match="negative work"):
            await tally.work(-1)
        stats = await _stats_once_handled(system, 4)
        pid = await tally.pid()
    entry = work(stats)
    assert (entry.sent, entry.handled, entry.in_flight) == (4, 4, 0)  # sent here, handled there
    assert dict(entry.handler_failed) == {"builtins.ValueError": 1}
    assert entry.handling_time.count == 4
    assert stats.mailbox_depth == {"tally": 0}  # the endpoint its child serves
    child = stats.children[ref.id]  # and the child's own, apart
    assert (work(child).sent, work(child).handled) == (0, 4)
    assert child.node != stats.node and child.mailbox_depth == {}
    assert not _alive(pid)


async def test_a_child_killed_and_restarted_counts_on_from_where_it_was() -> None:
    registry = CollectorRegistry()
    async with ActorSystem() as system:
        registry.register(StatsCollector(system))
        ref = await system.processes(restart="always").spawn(Tally)
        for n in range(3):
            await system.call(Tally.work, n)
        before = await system.stats()  # the child reports its 3
        scraped = await _counters(registry)
        assert work(before).handled == 3
        old = await system.call(Tally.pid)
        os.kill(old, signal.SIGKILL)
        new = await eventually(lambda: _pid(system, ref), lambda pid: pid not in (None, old))
        between = await system.stats()  # the new process has counted nothing yet
        assert _none_went_back(scraped, scraped := await _counters(registry))
        for n in range(2):
            await system.call(Tally.work, n)
        after = await system.stats()
        assert _none_went_back(scraped, await _counters(registry))
    assert work(between).handled == 3 and between.handling == 0
    assert (work(after).handled, work(after).handling_time.count) == (5, 5)
    assert work(after).handling_time.total >= work(before).handling_time.total
    assert (after.in_flight, after.handling, work(after).in_flight) == (0, 0, 0)
    assert not _alive(new)


Sample = tuple[str, frozenset[tuple[str, str]]]


async def _counters(registry: CollectorRegistry) -> dict[Sample, float]:
    """The counters (and histograms' parts) of a Prometheus scrape."""
    text = (await asyncio.to_thread(generate_latest, registry)).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        if family.type in ("counter", "histogram")
        for s in family.samples
    }


def _none_went_back(earlier: dict[Sample, float], later: dict[Sample, float]) -> bool:
    went_back = {k: (v, later.get(k)) for k, v in earlier.items() if later.get(k, -1) < v}
    assert not went_back, f"counters went back: {went_back}"
    return bool(earlier)


async def _pid(system: ActorSystem, ref: ActorRef[Tally]) -> int | None:
    try:
        return await system.call(Tally.pid, provider=ref, timeout=1.0)
    except (NoProvider, CallTimeout):  # not restarted yet
        return None


@on_each_transport
async def test_a_stopped_child_hands_in_its_last_counts(url: str) -> None:
    async with ActorSystem(url) as system:
        first, second = await system.processes().spawn_many(2, Tally)
        await asyncio.gather(*(system.call(Tally.work, n, provider=first) for n in range(3)))
        await system.stop(first)  # never asked before: it reports as it drains
        stats = await system.stats()
    assert work(stats).handled == 3
    assert list(stats.children) == [second.id]
