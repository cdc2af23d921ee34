"""Transport URLs with a namespace of a test's own, and the server checks the tests share.

:func:`fresh_url` gives ``memory://`` a hub of its own, a Redis URL a key
prefix of its own (whose keys it deletes afterwards: never a whole database)
and a NATS URL a prefix of its streams and buckets (deleted afterwards: never
another's). A transport is added by one entry in :data:`NAMESPACES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "NAMESPACES",
    "drop_keys",
    "drop_nats",
    "fresh_url",
    "nats_problem",
    "nats_url",
    "redis_problem",
    "redis_url",
    "with_query",
]


def redis_url() -> str:
    """The Redis the tests use: ``$TACTOR_REDIS_URL``, else the local default."""
    return os.environ.get("TACTOR_REDIS_URL", "redis://127.0.0.1:6379/0")


_redis_state: dict[str, str | None] = {}


def redis_problem(url: str) -> str | None:
    """Why the Redis at ``url`` cannot be tested against (asked once per URL), or None."""
    if url not in _redis_state:
        import redis

        client: Any = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        try:
            client.ping()
            _redis_state[url] = None
        except redis.RedisError as exc:
            _redis_state[url] = f"no Redis at {url}: {exc}"
        finally:
            client.close()
    return _redis_state[url]


def drop_keys(url: str, prefix: str) -> None:
    """Delete the keys under ``prefix`` (what a test left); never a whole database."""
    import redis

    client: Any = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def nats_url() -> str:
    """The NATS the tests use: ``$TACTOR_NATS_URL``, else the local default."""
    return os.environ.get("TACTOR_NATS_URL", "nats://127.0.0.1:4222")


_nats_state: dict[str, str | None] = {}


async def _nats_answers(url: str) -> None:
    import nats

    client = await nats.connect(url, connect_timeout=1, allow_reconnect=False)
    try:
        await client.jetstream().account_info()
    finally:
        await client.close()


def nats_problem(url: str) -> str | None:
    """Why the NATS at ``url`` (with JetStream) cannot be tested against, or None."""
    if url not in _nats_state:
        try:
            asyncio.run(_nats_answers(url))
            _nats_state[url] = None
        except Exception as exc:
            _nats_state[url] = f"no NATS with JetStream at {url}: {type(exc).__name__}: {exc}"
    return _nats_state[url]


def drop_nats(url: str, prefix: str) -> None:
    """Delete the streams and buckets of ``prefix`` (what a test left); never another's."""
    from tactor.transports.nats.names import Names

    async def drop() -> None:
        import nats
        from nats.js.errors import NotFoundError

        names = Names(prefix)
        client = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
        try:
            js = client.jetstream()
            for stream in (names.mailboxes, names.dead, names.queues):
                with contextlib.suppress(NotFoundError):
                    await js.delete_stream(stream)
            for bucket in (names.registry, names.registered, names.unfinished):
                with contextlib.suppress(NotFoundError):
                    await js.delete_key_value(bucket)
        finally:
            await client.close()

    asyncio.run(drop())


def with_query(url: str, **params: str) -> str:
    """``url`` with extra query parameters."""
    sep = "&" if "?" in url else "?"
    return url + sep + "&".join(f"{k}={v}" for k, v in params.items())


@contextlib.contextmanager
def _memory(base: str, ns: str) -> Iterator[str]:
    yield f"memory://{ns}"


@contextlib.contextmanager
def _redis(base: str, ns: str) -> Iterator[str]:
    prefix = f"tactor-test:{ns}"
    yield with_query(base, prefix=prefix)
    drop_keys(base.split("?")[0], prefix)


@contextlib.contextmanager
def _nats(base: str, ns: str) -> Iterator[str]:
    prefix = f"tactor-test-{ns}"
    yield with_query(base, prefix=prefix)
    drop_nats(base.split("?")[0], prefix)


#: URL scheme -> a context manager giving that transport's URL with namespace ``ns``.
NAMESPACES: dict[str, Callable[[str, str], contextlib.AbstractContextManager[str]]] = {
    "memory": _memory,
    "redis": _redis,
    "rediss": _redis,
    "redis+sentinel": _redis,
    "rediss+sentinel": _redis,
    "nats": _nats,
    "tls": _nats,
}


@contextlib.contextmanager
def fresh_url(base: str) -> Iterator[str]:
    """``base`` with a namespace of its own for the duration (see :data:`NAMESPACES`)."""
    scheme = urlsplit(base).scheme
    namespaced = NAMESPACES.get(scheme)
    if namespaced is None:
        known = ", ".join(f"{s}://" for s in NAMESPACES)
        raise ValueError(f"no test namespace for {base!r}: tactor.testing knows {known}")
    with namespaced(base, f"t{uuid.uuid4().hex[:12]}") as url:
        yield url
