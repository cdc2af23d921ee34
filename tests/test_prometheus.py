"""The Prometheus collector (tactor[prometheus]) exports ``system.stats()``."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tactor import ActorSystem
from tactor.prometheus import StatsCollector
from tests.model import Item, Pricing


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_a_scrape_exports_the_counters_gauges_and_histogram(url: str) -> None:
    registry = CollectorRegistry()
    async with ActorSystem(url, timeout=5) as system:
        registry.register(StatsCollector(system))  # in the loop's thread: describe() only
        await system.spawn(Pricing, "eu")
        await system.call(Pricing.quote, [Item("a", 1)])
        with pytest.raises(Exception, match="boom"):
            await system.call(Pricing.crash, "boom")
        text = (await asyncio.to_thread(generate_latest, registry)).decode()
    got = samples(text)
    quote = frozenset({("endpoint", "pricing"), ("method", "quote")})
    assert got[("tactor_calls_sent_total", quote)] == 1
    assert got[("tactor_requests_handled_total", quote)] == 1
    assert got[("tactor_request_handling_seconds_count", quote)] == 1
    assert got[("tactor_request_handling_seconds_bucket", quote | {("le", "+Inf")})] == 1
    crash = {("endpoint", "pricing"), ("method", "crash")}
    assert got[("tactor_calls_failed_total", frozenset(crash | {("error", "RemoteError")}))] == 1
    failed = frozenset(crash | {("error", "builtins.ValueError")})
    assert got[("tactor_requests_failed_total", failed)] == 1
    assert got[("tactor_mailbox_depth", frozenset({("endpoint", "pricing")}))] == 0
    assert got[("tactor_calls_in_flight", quote)] == 0


async def test_collect_in_the_loops_thread_says_what_to_do() -> None:
    async with ActorSystem() as system:
        collector = StatsCollector(system)
        with pytest.raises(RuntimeError, match="another thread"):
            collector.collect()
