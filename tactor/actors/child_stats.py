"""What a node's process providers did, counted into its ``stats()``.

A child process keeps its own :class:`~tactor.actors.stats.Stats`. Its parent
asks for them when its own stats are asked for (a ``stats?`` frame on the
child's channel; the child answers ``stats`` with its snapshot in the codec's
wire form), and a child that drains sends a last ``stats`` before it exits.

Each process of a child counts from zero (a restart is a new process), so the
parent adds what each report holds beyond the one before it from the same
process into a running total: the child's counters in the parent never go
back, whatever restarts. When a process's channel closes, its gauges (calls in
flight, messages in hand) leave the total and its counters stay; what it
counted after its last report is lost with it if it died.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import Any

from ..codecs import JsonCodec
from ..errors import TransportClosed
from ..transports.channel import Channel, settle
from .stats import EMPTY, Stats, SystemStats, counters_only

__all__ = ["ChildStats", "answer_stats", "report_stats"]

#: How long the parent waits for a child's report; one that is late counts as it last did.
ASK_TIMEOUT = 1.0


@functools.cache
def _codec() -> JsonCodec:
    return JsonCodec()


def report_stats(channel: Channel, stats: SystemStats) -> None:
    """(In the child.) Send ``stats`` to the parent, if it is still there."""
    with contextlib.suppress(TransportClosed):
        channel.send(["stats", _codec().to_wire(stats, SystemStats)])


def answer_stats(channel: Channel, snapshot: Callable[[], SystemStats]) -> None:
    """(In the child.) Answer each ``stats?`` of the parent with ``snapshot()``."""
    channel.handlers["stats?"] = lambda _, __: report_stats(channel, snapshot())


class ChildStats:
    """One supervised child's counts, over its processes (see the module's docstring)."""

    def __init__(self) -> None:
        self.total = Stats()
        self.node = ""  # the node id of its latest process
        self._channel: Channel | None = None
        self._answer: asyncio.Future[None] | None = None

    def attach(self, channel: Channel) -> None:
        """Count the reports of the process served on ``channel``, from zero."""
        process = _Process(self, channel)
        channel.handlers["stats"] = process.report
        channel.on_close.append(process.closed)
        self._channel = channel

    async def ask(self) -> None:
        """Have the child's process report, and wait for it (up to ``ASK_TIMEOUT``)."""
        channel = self._channel
        if channel is None or channel.closed.is_set():
            return
        if self._answer is None or self._answer.done():
            self._answer = asyncio.get_running_loop().create_future()
            try:
                channel.send(["stats?"])
            except TransportClosed:
                return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._answer), ASK_TIMEOUT)

    def answered(self) -> None:
        if self._answer is not None:
            settle(self._answer, None)

    def snapshot(self) -> SystemStats:
        return self.total.snapshot(self.node, {})

    def retire(self, into: Stats) -> None:
        """The child is gone for good: its counts join ``into``, and so does what it
        reports from now on (a last report may still be on its way)."""
        into.add(self.snapshot())
        self.total = into


class _Process:
    """The reports of one process of a child."""

    def __init__(self, counts: ChildStats, channel: Channel) -> None:
        self.counts, self.channel = counts, channel
        self.last = EMPTY

    def report(self, header: list[Any], payloads: list[bytes]) -> None:
        new: SystemStats = _codec().from_wire(header[1], SystemStats)
        if self.channel.closed.is_set():
            new = counters_only(new)  # the process is gone: nothing of it is in hand
        self._count(new)
        self.counts.node = new.node
        self.counts.answered()

    def closed(self) -> None:
        self._count(counters_only(self.last))
        self.counts.answered()

    def _count(self, new: SystemStats) -> None:
        self.counts.total.add(new, self.last)
        self.last = new
