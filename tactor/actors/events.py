"""Events: topics derived from event types, the ``@subscribe`` / ``@topic`` markers, and
the bytes of an event to publish.

An event's topic is its class's ``@topic("a.b.c")`` if given, else the class
name. ``@subscribe`` marks an actor method as an event handler; with no
argument it listens on the topic of its parameter's type (every member of a
union), with patterns it listens on those (``*`` one segment, ``#`` any).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar, overload

from ..codecs import Codec
from ..errors import EncodeError, PayloadTooLarge
from ..transports.topics import check_pattern, check_topic
from .envelope import Event

__all__ = ["encode_event", "event_topic", "event_types", "subscribe", "topic", "topic_of"]

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])


def topic(name: str) -> Callable[[C], C]:
    """Class decorator: events of this class go to topic ``name`` (e.g. ``"prices.changed"``)."""
    check_topic(name)

    def mark(cls: C) -> C:
        cls.__tactor_topic__ = name  # type: ignore[attr-defined]
        return cls

    return mark


def topic_of(cls: type) -> str:
    """The topic events of ``cls`` are published on."""
    explicit: str | None = cls.__dict__.get("__tactor_topic__")
    return explicit if explicit is not None else cls.__name__


def event_types(tp: Any) -> tuple[type, ...]:
    """The classes an event annotation names: ``A`` -> (A,), ``A | B`` -> (A, B)."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return tuple(c for a in typing.get_args(tp) for c in event_types(a))
    if origin is typing.Annotated:
        return event_types(typing.get_args(tp)[0])
    return (tp,) if isinstance(tp, type) and tp is not type(None) else ()


@overload
def subscribe(fn: F, /) -> F: ...
@overload
def subscribe(*patterns: str) -> Callable[[F], F]: ...
def subscribe(*args: Any) -> Any:
    """Mark an actor method as an event handler.

    ``@subscribe`` listens on the topic of the parameter's type;
    ``@subscribe("prices.#", "stock.*")`` listens on those patterns and decodes
    each event as the parameter's type. Handlers run through the actor's
    mailbox, one message at a time with its calls.
    """
    if len(args) == 1 and callable(args[0]):
        args[0].__tactor_subscribe__ = True
        return args[0]
    patterns = tuple(check_pattern(p) for p in args)

    def mark(fn: F) -> F:
        fn.__tactor_subscribe__ = True  # type: ignore[attr-defined]
        fn.__tactor_patterns__ = patterns  # type: ignore[attr-defined]
        return fn

    return mark


def event_topic(event: object, topic: str | None) -> str:
    """The topic ``event`` goes to: ``topic`` (checked: else ``ConfigError``), or its type's."""
    return check_topic(topic) if topic is not None else topic_of(type(event))


def encode_event(
    codec: Codec, event: object, name: str, max_payload: int, trace: dict[str, str] | None
) -> bytes:
    """The bytes of ``event``'s envelope, to publish on topic ``name`` (with ``trace``).

    Raises ``EncodeError`` naming the event for a value JSON cannot hold,
    ``PayloadTooLarge`` over ``max_payload``.
    """
    cls = type(event)
    body = codec.to_wire(event, cls)
    # read as its subscribers will read it: refused here rather than dropped there
    codec.check_wire(body, cls, f"the event {cls.__qualname__} does not fit its class")
    try:
        payload = codec.dumps(Event(name, cls.__name__, body, trace).to_wire())
    except EncodeError as exc:
        raise EncodeError(f"the event {cls.__qualname__} on {name!r}: {exc}") from None
    if len(payload) > max_payload:
        raise PayloadTooLarge(
            f"the event {cls.__qualname__} is {len(payload)} bytes, over max_payload={max_payload}"
        )
    return payload
