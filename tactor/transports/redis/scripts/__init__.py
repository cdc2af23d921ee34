"""Lua scripts of the Redis transport: each check-and-act is one atomic round trip.

Grouped by what they serve: :mod:`.delivery` (mailboxes), :mod:`.acks` (what becomes
of a taken entry), :mod:`.registry` (providers, endpoints, liveness) and :mod:`.queues`;
:mod:`.clock` gives them the server's time. Here: every script by name, which the transport
loads (``BY_NAME``).
"""

from __future__ import annotations

from .acks import ACK, CLEANUP, DEAD_LETTER, REPLAY, REQUEUE
from .delivery import CARRIED, DELIVER, DELIVER_TO_PROVIDERS, TAKE
from .queues import QUEUE_PUT, QUEUE_TASK_DONE, QUEUE_WAKE
from .registry import (
    DROP_ENDPOINT,
    ENDPOINTS,
    HEARTBEAT,
    LEAVE,
    LIVE,
    PROVIDERS,
    REGISTER,
    REGISTRY,
)

__all__ = ["BY_NAME", "CARRIED"]  # the scripts themselves: by name, below

#: Every script, by the name the transport calls it (``transport.scripts[name]``).
BY_NAME = {
    "deliver": DELIVER,
    "deliver_to_providers": DELIVER_TO_PROVIDERS,
    "register": REGISTER,
    "providers": PROVIDERS,
    "take": TAKE,
    "ack": ACK,
    "requeue": REQUEUE,
    "cleanup": CLEANUP,
    "dead_letter": DEAD_LETTER,
    "replay": REPLAY,
    "heartbeat": HEARTBEAT,
    "leave": LEAVE,
    "live": LIVE,
    "registry": REGISTRY,
    "endpoints": ENDPOINTS,
    "drop_endpoint": DROP_ENDPOINT,
    "queue_put": QUEUE_PUT,
    "queue_task_done": QUEUE_TASK_DONE,
    "queue_wake": QUEUE_WAKE,
}
