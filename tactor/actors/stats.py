"""What a node has done, counted: ``system.stats()`` and the recorder behind it.

:class:`Stats` is the :class:`~tactor.actors.telemetry.Telemetry` every system
has. Its hot path is a dict look-up and a few integer additions per message
(``benchmarks/inprocess.py`` measures it against a run without it); a snapshot
is taken only when asked for, as typed dataclasses (:class:`SystemStats`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    """

    node: str
    methods: tuple[MethodStats, ...]
    mailbox_depth: Mapping[str, int]
    in_flight: int
    handling: int
    events_published: Mapping[str, int] = field(default_factory=dict)
    events_handled: Mapping[str, int] = field(default_factory=dict)
    events_failed: Mapping[str, int] = field(default_factory=dict)

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
