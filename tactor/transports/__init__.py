"""Transports move opaque payloads; pick one by URL with :func:`open_transport`.

``memory://`` (the embedded default) and ``memory://NAME`` run in-process;
``redis://`` and ``rediss://`` reach a Redis server, ``redis+sentinel://`` (and
``rediss+sentinel://``, over TLS) the primary that Redis Sentinels name; ``nats://`` and
``tls://`` a NATS server or cluster with JetStream. Concrete transports are imported only
when their URL is opened, so ``import tactor`` never imports redis or nats.
"""

from __future__ import annotations

from importlib import import_module
from urllib.parse import urlsplit

from ..errors import ConfigError
from .base import Transport
from .consumer import Delivery, MailboxConsumer
from .subscription import Subscription
from .topics import check_pattern, check_topic, topic_matches

__all__ = [
    "Delivery",
    "MailboxConsumer",
    "Subscription",
    "Transport",
    "check_pattern",
    "check_topic",
    "open_transport",
    "topic_matches",
]

#: URL scheme -> "module:Class". The one place that names concrete transports.
SCHEMES: dict[str, str] = {
    "memory": "tactor.transports.memory:MemoryTransport",
    "redis": "tactor.transports.redis:RedisTransport",
    "rediss": "tactor.transports.redis:RedisTransport",
    "redis+sentinel": "tactor.transports.redis:RedisTransport",
    "rediss+sentinel": "tactor.transports.redis:RedisTransport",
    "nats": "tactor.transports.nats:NatsTransport",
    "tls": "tactor.transports.nats:NatsTransport",  # NATS over TLS, as nats-py names it
}


def open_transport(url: str) -> Transport:
    """Return an unstarted transport for ``url``.

    Raises :class:`~tactor.errors.ConfigError` (a ``ValueError``) for an unknown
    scheme, a missing optional dependency, or an option that is unknown or bad.
    """
    scheme = urlsplit(url).scheme
    target = SCHEMES.get(scheme)
    if target is None:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ConfigError(f"unknown transport URL {url!r}: expected one of {known}")
    module_name, _, class_name = target.partition(":")
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"the {scheme}:// transport needs an optional dependency ({exc}); "
            "for redis://, rediss:// and redis(s)+sentinel:// install 'tactor[redis]', "
            "for nats:// and tls:// 'tactor[nats]'"
        ) from exc
    transport_class = getattr(module, class_name)
    transport: Transport = transport_class.from_url(url)
    return transport
