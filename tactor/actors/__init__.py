"""The runtime: actors, schemas, calls, broadcasts, events and mailbox runners."""

from .actor import Actor, ActorRef, json_schema
from .blocking import BlockingSystem
from .broadcast import BroadcastResult, Outcome
from .deadline import deadline
from .default import expose, init, publish, remote, shutdown, stub, subscriber, system
from .events import subscribe, topic, topic_of
from .system import ActorSystem, EventSubscription

__all__ = [
    "Actor",
    "ActorRef",
    "ActorSystem",
    "BlockingSystem",
    "BroadcastResult",
    "EventSubscription",
    "Outcome",
    "deadline",
    "expose",
    "init",
    "json_schema",
    "publish",
    "remote",
    "shutdown",
    "stub",
    "subscribe",
    "subscriber",
    "system",
    "topic",
    "topic_of",
]
