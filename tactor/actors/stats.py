"""What a node has done, counted: ``system.stats()`` and the recorder behind it.

:class:`Stats` is the :class:`~tactor.actors.telemetry.Telemetry` every system
has. Its hot path is a dict look-up and a few integer additions per message
(``benchmarks/inprocess.py`` measures it against a run without it); a snapshot
is taken only when asked for, as typed dataclasses (:class:`SystemStats`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from time import perf_counter
from typing import Any

from ..errors import CallTimeout
from .envelope import Request
from .telemetry import Carrier, Telemetry

__all__ = ["BUCKETS", "Histogram", "MethodStats", "Stats", "SystemStats"]

#: Upper bounds (seconds) of the handling-time histogram's buckets; one more counts the rest.
BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: Methods counted apart per endpoint; beyond, unknown names (a caller's typo, a probe) share one.
_MAX_METHODS = 1000
_OTHER = "<other>"


@dataclass(frozen=True, slots=True)
class Histogram:
    """Durations in seconds: ``counts[i]`` fell in ``(bounds[i-1], bounds[i]]``; the last
    count, one more than ``bounds``, is over the last bound. ``total`` is their sum."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float

    @property
    def count(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True, slots=True)
class MethodStats:
    """One method of one endpoint, as this node saw it.

    As a caller: ``sent`` calls, tells and broadcasts; of those ended, ``timed_out``
    (:class:`~tactor.errors.CallTimeout`) and ``failed`` by exception type name (any
    other error the caller got); ``in_flight`` sent and not yet ended. As a provider:
    ``handled`` requests; ``handler_failed`` by failure type (the exception's type
    name, or tactor's check: ``invalid_arguments``, ``deadline``, ``cancelled``, …);
    ``handling_time`` from the request's start to its reply.
    """

    endpoint: str
    method: str
    sent: int
    timed_out: int
    failed: Mapping[str, int]
    in_flight: int
    handled: int
    handler_failed: Mapping[str, int]
    handling_time: Histogram


@dataclass(frozen=True, slots=True)
class SystemStats:
    """A snapshot of one node's counters and gauges (see :meth:`ActorSystem.stats`).

    ``mailbox_depth``: messages waiting in the shared mailbox of each endpoint this
    node serves, not yet taken by a provider, where the transport can tell (memory
    and Redis can). ``in_flight``: calls, tells and
    broadcasts sent by this node and not yet ended; ``handling``: requests and events
    its providers and subscribers are handling now. Events by topic: ``published``
    here, ``handled`` and ``failed`` (the handler raised) by this node's subscribers.

    The node's process providers (``system.processes()``) count as part of it: what
    they handled and sent is in the figures above, and ``children`` holds each one's
    own, by provider id (its ``node`` is the child's, its ``mailbox_depth`` empty). A
    child's counts reach its parent when the parent's stats are asked for, and when the
    child drains; they start from zero when a child restarts, and the parent adds them
    to what it had, so no counter ever goes back. A child that dies loses what it
    counted since its parent last asked (see docs/operating.md).
    """

    node: str
    methods: tuple[MethodStats, ...]
    mailbox_depth: Mapping[str, int]
    in_flight: int
    handling: int
    events_published: Mapping[str, int] = field(default_factory=dict)
    events_handled: Mapping[str, int] = field(default_factory=dict)
    events_failed: Mapping[str, int] = field(default_factory=dict)
    children: Mapping[str, SystemStats] = field(default_factory=dict)

    def method(self, endpoint: str, method: str) -> MethodStats | None:
        """The stats of ``endpoint.method``, or None if this node has not seen it."""
        for entry in self.methods:
            if entry.endpoint == endpoint and entry.method == method:
                return entry
        return None


class _Method:
    __slots__ = (
        "counts",
        "endpoint",
        "failed",
        "handled",
        "handler_failed",
        "in_flight",
        "method",
        "sent",
        "timed_out",
        "total",
    )

    def __init__(self, endpoint: str, method: str) -> None:
        self.endpoint, self.method = endpoint, method
        self.sent = self.timed_out = self.in_flight = self.handled = 0
        self.failed: dict[str, int] = {}
        self.handler_failed: dict[str, int] = {}
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def snapshot(self) -> MethodStats:
        return MethodStats(
            self.endpoint,
            self.method,
            self.sent,
            self.timed_out,
            dict(self.failed),
            self.in_flight,
            self.handled,
            dict(self.handler_failed),
            Histogram(BUCKETS, tuple(self.counts), self.total),
        )


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _add(counts: dict[str, int], new: Mapping[str, int], old: Mapping[str, int]) -> None:
    for key, count in new.items():
        counts[key] = counts.get(key, 0) + count - old.get(key, 0)


#: A snapshot of nothing: what :meth:`Stats.add` counts from.
EMPTY = SystemStats("", (), {}, 0, 0)
_NO_METHOD = MethodStats(
    "", "", 0, 0, {}, 0, 0, {}, Histogram(BUCKETS, (0,) * (len(BUCKETS) + 1), 0.0)
)


def counters_only(stats: SystemStats) -> SystemStats:
    """``stats`` with its gauges at zero: what a process that ended still counts."""
    methods = tuple(replace(m, in_flight=0) for m in stats.methods)
    return replace(stats, methods=methods, in_flight=0, handling=0)


class Stats(Telemetry):
    """Counts messages by endpoint and method, and events by topic, for one node."""

    __slots__ = ("_busy", "_count", "_failed_events", "_handled_events", "_methods", "_published")

    def __init__(self) -> None:
        self._busy = 0  # requests and events being handled now
        self._methods: dict[str, dict[str, _Method]] = {}  # by endpoint, then method
        self._count = 0
        self._published: dict[str, int] = {}
        self._handled_events: dict[str, int] = {}
        self._failed_events: dict[str, int] = {}

    def _new(self, endpoint: str, method: str) -> _Method:
        if self._count >= _MAX_METHODS:
            method = _OTHER
        methods = self._methods.setdefault(endpoint, {})
        if method not in methods:
            methods[method] = _Method(endpoint, method)
            self._count += 1
        return methods[method]

    def sending(
        self, kind: str, endpoint: str, method: str, msg_id: str
    ) -> tuple[Any, Carrier | None]:
        try:
            entry = self._methods[endpoint][method]
        except KeyError:
            entry = self._new(endpoint, method)
        entry.sent += 1
        entry.in_flight += 1
        return entry, None

    def sent(self, token: Any, error: BaseException | None) -> None:
        entry: _Method = token
        entry.in_flight -= 1
        if error is None:
            return
        if isinstance(error, CallTimeout):
            entry.timed_out += 1
        else:
            _bump(entry.failed, type(error).__name__)

    def handling(self, request: Request, provider: str) -> Any:
        self._busy += 1
        try:
            entry = self._methods[request.endpoint][request.method]
        except KeyError:
            entry = self._new(request.endpoint, request.method)
        return entry, perf_counter()

    def handled(self, token: Any, error: str | None) -> None:
        entry: _Method = token[0]
        elapsed = perf_counter() - token[1]
        self._busy -= 1
        entry.handled += 1
        entry.counts[bisect_left(BUCKETS, elapsed)] += 1
        entry.total += elapsed
        if error is not None:
            _bump(entry.handler_failed, error)

    def publishing(self, topic: str, type_name: str) -> tuple[Any, Carrier | None]:
        return topic, None

    def published(self, token: Any, error: BaseException | None) -> None:
        if error is None:
            _bump(self._published, token)

    def receiving(self, topic: str, subscriber: str, carrier: Carrier | None) -> Any:
        self._busy += 1
        return topic

    def received(self, token: Any, error: BaseException | None) -> None:
        self._busy -= 1
        _bump(self._handled_events, token)
        if error is not None:
            _bump(self._failed_events, token)

    def add(self, new: SystemStats, old: SystemStats = EMPTY) -> None:
        """Count in what another node's snapshot ``new`` holds beyond ``old``, an earlier
        snapshot of that node (a child process's report, and the one before it)."""
        before = {(m.endpoint, m.method): m for m in old.methods}
        for m in new.methods:
            was = before.get((m.endpoint, m.method), _NO_METHOD)
            try:
                entry = self._methods[m.endpoint][m.method]
            except KeyError:
                entry = self._new(m.endpoint, m.method)
            entry.sent += m.sent - was.sent
            entry.timed_out += m.timed_out - was.timed_out
            entry.in_flight += m.in_flight - was.in_flight
            entry.handled += m.handled - was.handled
            _add(entry.failed, m.failed, was.failed)
            _add(entry.handler_failed, m.handler_failed, was.handler_failed)
            now, then = m.handling_time, was.handling_time
            for i, (count, earlier) in enumerate(zip(now.counts, then.counts, strict=True)):
                entry.counts[i] += count - earlier
            entry.total += now.total - then.total  # one difference: the sum never goes back
        self._busy += new.handling - old.handling
        _add(self._published, new.events_published, old.events_published)
        _add(self._handled_events, new.events_handled, old.events_handled)
        _add(self._failed_events, new.events_failed, old.events_failed)

    def snapshot(self, node: str, mailbox_depth: Mapping[str, int]) -> SystemStats:
        entries = [entry for methods in self._methods.values() for entry in methods.values()]
        return SystemStats(
            node,
            tuple(entry.snapshot() for entry in entries),
            dict(mailbox_depth),
            sum(entry.in_flight for entry in entries),
            self._busy,
            dict(self._published),
            dict(self._handled_events),
            dict(self._failed_events),
        )
