"""Adaptive prefetch (Redis, NATS): how many messages a provider takes at once.

A provider takes as many as it expects to handle within the transport's
``prefetch_window`` — a moving average of the time from handing a message out
to asking for the next decides — at most ``prefetch``. A slow handler takes one
at a time, so a message never waits long in a busy provider while an idle one
could have taken it; a quick one takes several per round trip.
"""

from __future__ import annotations

__all__ = ["PREFETCH", "PREFETCH_WINDOW", "averaged", "prefetch_count"]

#: The defaults of the ``prefetch`` and ``prefetch_window`` options.
PREFETCH = 32
PREFETCH_WINDOW = 0.002
#: How far the last message's time moves the average.
_WEIGHT = 0.25


def averaged(average: float, handed_at: float, now: float) -> float:
    """The moving average of the time per message, now that the one handed out at
    ``handed_at`` is done (at ``now``)."""
    return average + (now - handed_at - average) * _WEIGHT


def prefetch_count(handling: float, window: float, most: int) -> int:
    """How many messages to take at once: those expected to be handled within ``window``
    seconds at ``handling`` seconds each, at most ``most``; one for a slow handler."""
    if most == 1 or handling >= window:
        return 1
    return min(most, max(1, int(window / max(handling, 1e-6))))
