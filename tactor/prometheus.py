"""A Prometheus collector of ``system.stats()`` (``pip install 'tactor[prometheus]'``).

::

    from prometheus_client import REGISTRY, start_http_server
    from tactor.prometheus import StatsCollector

    async with ActorSystem(url) as system:
        REGISTRY.register(StatsCollector(system))  # made in the system's event loop
        start_http_server(9100)                   # scrapes run in its thread

Prometheus scrapes call :meth:`StatsCollector.collect` in their own thread; it asks
the system's event loop for a snapshot and waits for it (up to ``timeout``
seconds). It cannot be called from that loop's thread: an exposition served from
inside the loop (aiohttp, say) runs ``generate_latest`` in a worker thread
(``await asyncio.to_thread(generate_latest, registry)``).

The metrics (labels in braces), all per node, its process providers included
(their counters never go back across restarts; see docs/operating.md):

- ``tactor_calls_sent_total{endpoint,method}``, ``tactor_calls_timed_out_total``,
  ``tactor_calls_failed_total{endpoint,method,error}``, ``tactor_calls_in_flight``:
  calls, tells and broadcasts this node sent;
- ``tactor_requests_handled_total{endpoint,method}``,
  ``tactor_requests_failed_total{endpoint,method,error}``,
  ``tactor_request_handling_seconds{endpoint,method}`` (histogram): requests its
  providers handled; ``tactor_handling``: requests and events being handled now;
- ``tactor_mailbox_depth{endpoint}``: messages waiting in the mailboxes it serves;
- ``tactor_events_published_total{topic}``, ``tactor_events_handled_total{topic}``,
  ``tactor_events_failed_total{topic}``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from tactor import ActorSystem, MethodStats, SystemStats

__all__ = ["StatsCollector"]

_Value = Callable[[MethodStats], int]
_Counts = Callable[[MethodStats], Mapping[str, int]]
_METHOD = ["endpoint", "method"]
_ERROR = ["endpoint", "method", "error"]


class StatsCollector:
    """Exports one :class:`~tactor.ActorSystem`'s stats; register it with a
    ``prometheus_client`` registry. Make it in the system's event loop (or pass ``loop``)."""

    def __init__(
        self,
        system: ActorSystem,
        *,
        timeout: float = 5.0,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.system = system
        self.timeout = timeout
        self._loop = loop or asyncio.get_running_loop()

    def describe(self) -> Iterable[Metric]:
        """The metric families, without samples: a registry learns the names without
        asking the system (registering from the loop's thread is fine)."""
        return _families(None)

    def collect(self) -> Iterable[Metric]:
        """A snapshot of the system's stats as metric families (called by scrapes)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError(
                "StatsCollector.collect() was called in the system's event loop, which it "
                "must wait for: call it from another thread (asyncio.to_thread)"
            )
        future = asyncio.run_coroutine_threadsafe(self.system.stats(), self._loop)
        return _families(future.result(self.timeout))


def _families(stats: SystemStats | None) -> list[Metric]:
    methods = () if stats is None else stats.methods
    families: list[Metric] = [
        _counter("calls_sent", "Calls, tells and broadcasts sent", methods, lambda m: m.sent),
        _counter("calls_timed_out", "Calls whose deadline passed", methods, lambda m: m.timed_out),
        _errors("calls_failed", "Calls that failed, by error type", methods, lambda m: m.failed),
        _gauge("calls_in_flight", "Calls sent and not yet ended", methods, lambda m: m.in_flight),
        _counter("requests_handled", "Requests handled", methods, lambda m: m.handled),
        _errors(
            "requests_failed",
            "Requests handled with a failure, by type",
            methods,
            lambda m: m.handler_failed,
        ),
        _histogram(methods),
    ]
    handling = GaugeMetricFamily("tactor_handling", "Requests and events being handled now")
    depth = GaugeMetricFamily(
        "tactor_mailbox_depth", "Messages waiting in a served mailbox", labels=["endpoint"]
    )
    if stats is not None:
        handling.add_metric([], stats.handling)
        for endpoint, waiting in sorted(stats.mailbox_depth.items()):
            depth.add_metric([endpoint], waiting)
    families += [handling, depth]
    for what, counts in _events(stats):
        family = CounterMetricFamily(f"tactor_events_{what}", f"Events {what}", labels=["topic"])
        for topic, count in sorted(counts.items()):
            family.add_metric([topic], count)
        families.append(family)
    return families


def _events(stats: SystemStats | None) -> Iterator[tuple[str, Mapping[str, int]]]:
    yield "published", {} if stats is None else stats.events_published
    yield "handled", {} if stats is None else stats.events_handled
    yield "failed", {} if stats is None else stats.events_failed


def _counter(name: str, text: str, methods: Iterable[MethodStats], value: _Value) -> Metric:
    family = CounterMetricFamily(f"tactor_{name}", text, labels=_METHOD)
    for m in methods:
        family.add_metric([m.endpoint, m.method], value(m))
    return family


def _gauge(name: str, text: str, methods: Iterable[MethodStats], value: _Value) -> Metric:
    family = GaugeMetricFamily(f"tactor_{name}", text, labels=_METHOD)
    for m in methods:
        family.add_metric([m.endpoint, m.method], value(m))
    return family


def _errors(name: str, text: str, methods: Iterable[MethodStats], counts: _Counts) -> Metric:
    family = CounterMetricFamily(f"tactor_{name}", text, labels=_ERROR)
    for m in methods:
        for error, count in sorted(counts(m).items()):
            family.add_metric([m.endpoint, m.method, error], count)
    return family


def _histogram(methods: Iterable[MethodStats]) -> Metric:
    family = HistogramMetricFamily(
        "tactor_request_handling_seconds", "Time from a request's start to its reply",
        labels=_METHOD,
    )  # fmt: skip
    for m in methods:
        hist = m.handling_time
        cumulative = list(itertools.accumulate(hist.counts))
        bounds = [*(repr(b) for b in hist.bounds), "+Inf"]
        buckets = list(zip(bounds, cumulative, strict=True))
        family.add_metric([m.endpoint, m.method], buckets, hist.total)
    return family
