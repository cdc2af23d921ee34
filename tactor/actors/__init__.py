"""The runtime: actors, schemas, calls, broadcasts, events and mailbox runners."""

from .actor import Actor, ActorRef, json_schema
from .broadcast import BroadcastResult, Outcome
from .deadline import deadline
from .events import subscribe, topic, topic_of
from .system import ActorSystem, EventSubscription

__all__ = [
    "Actor",
    "ActorRef",
    "ActorSystem",
    "BroadcastResult",
    "EventSubscription",
    "Outcome",
    "deadline",
    "json_schema",
    "subscribe",
    "topic",
    "topic_of",
]
