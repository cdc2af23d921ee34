"""The runtime: actors, schemas, calls, broadcasts, events and mailbox runners."""

from .actor import Actor, ActorRef, json_schema
from .blocking import BlockingProcesses, BlockingQueue, BlockingSystem
from .broadcast import BroadcastResult, Outcome
from .dead_letters import DeadLetter
from .deadline import deadline
from .default import (
    expose,
    init,
    processes,
    publish,
    queue,
    remote,
    shutdown,
    stub,
    subscriber,
    system,
    unexpose,
    unsubscribe,
)
from .events import subscribe, topic, topic_of
from .operating import EndpointInfo, ProviderInfo
from .queues import AsyncQueue
from .stats import Histogram, MethodStats, SystemStats
from .supervision import Processes
from .system import ActorSystem, EventSubscription

__all__ = [
    "Actor",
    "ActorRef",
    "ActorSystem",
    "AsyncQueue",
    "BlockingProcesses",
    "BlockingQueue",
    "BlockingSystem",
    "BroadcastResult",
    "DeadLetter",
    "EndpointInfo",
    "EventSubscription",
    "Histogram",
    "MethodStats",
    "Outcome",
    "Processes",
    "ProviderInfo",
    "SystemStats",
    "deadline",
    "expose",
    "init",
    "json_schema",
    "processes",
    "publish",
    "queue",
    "remote",
    "shutdown",
    "stub",
    "subscribe",
    "subscriber",
    "system",
    "topic",
    "topic_of",
    "unexpose",
    "unsubscribe",
]
