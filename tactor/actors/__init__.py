"""The runtime: actors, schemas, calls, broadcasts, events and mailbox runners."""

from .actor import Actor, ActorRef
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
    "subscribe",
    "topic",
    "topic_of",
]
