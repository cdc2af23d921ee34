"""Shared fixtures: async tests, and the ``url`` fixture that runs a test on every transport.

Async tests are plain ``async def test_...`` functions, run in a fresh event
loop by the hook below (no plugin needed). Tests that take ``url`` run once
per transport; each run gets its own namespace (a named memory hub, or a
unique Redis key prefix, or NATS stream, subject and bucket prefix), so tests
never see each other's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import uuid
from collections.abc import Iterator

import pytest

TRANSPORTS = ["memory", "redis", "nats"]


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(pyfuncitem.obj(**kwargs))
    return True


def redis_url() -> str:
    return os.environ.get("TACTOR_REDIS_URL", "redis://127.0.0.1:6379/0")


_redis_state: dict[str, str | None] = {}


def require_redis() -> str:
    """The Redis URL to test against; skip without one, but fail under CI=true."""
    url = redis_url()
    if url not in _redis_state:
        import redis

        try:
            redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2).ping()
            _redis_state[url] = None
        except redis.RedisError as exc:
            _redis_state[url] = f"no Redis at {url}: {exc}"
    problem = _redis_state[url]
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem} (Redis tests must run under CI=true)")
        pytest.skip(problem)
    return url


def drop_keys(url: str, prefix: str) -> None:
    """Delete this test's keys (what a crashed test may have left); never a whole database."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def nats_url() -> str:
    return os.environ.get("TACTOR_NATS_URL", "nats://127.0.0.1:4222")


_nats_state: dict[str, str | None] = {}


async def _nats_answers(url: str) -> None:
    import nats

    nc = await nats.connect(url, connect_timeout=1, allow_reconnect=False)
    try:
        await nc.jetstream().account_info()
    finally:
        await nc.close()


def require_nats() -> str:
    """The NATS URL to test against (JetStream on); skip without one, but fail under CI=true."""
    url = nats_url()
    if url not in _nats_state:
        try:
            asyncio.run(_nats_answers(url))
            _nats_state[url] = None
        except Exception as exc:
            _nats_state[url] = f"no NATS with JetStream at {url}: {type(exc).__name__}: {exc}"
    problem = _nats_state[url]
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem} (NATS tests must run under CI=true)")
        pytest.skip(problem)
    return url


def drop_nats(url: str, prefix: str) -> None:
    """Delete this test's streams and buckets (never another's)."""
    from tactor.transports.nats.names import Names

    async def drop() -> None:
        import nats

        names = Names(prefix)
        nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
        try:
            js = nc.jetstream()
            for stream in (names.mailboxes, names.dead, names.queues):
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    await js.delete_stream(stream)
            for bucket in (names.registry, names.unfinished):
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    await js.delete_key_value(bucket)
        finally:
            await nc.close()

    asyncio.run(drop())


def with_query(url: str, **params: str) -> str:
    """``url`` with extra query parameters."""
    sep = "&" if "?" in url else "?"
    return url + sep + "&".join(f"{k}={v}" for k, v in params.items())


@pytest.fixture(params=TRANSPORTS)
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A transport URL with a namespace of this test's own."""
    ns = f"t{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        yield f"memory://{ns}"
        return
    if request.param == "redis":
        base = require_redis()
        prefix = f"tactor-test:{ns}"
        yield with_query(base, prefix=prefix)
        drop_keys(base, prefix)
        return
    if request.param == "nats":
        base = require_nats()
        prefix = f"tactor-test-{ns}"
        yield with_query(base, prefix=prefix)
        drop_nats(base, prefix)
        return
    raise AssertionError(f"unknown transport {request.param}")
