"""Shared fixtures: async tests, and the ``url`` fixture that runs a test on every transport.

Async tests are plain ``async def test_...`` functions, run in a fresh event
loop by the hook below (no plugin needed). Tests that take ``url`` run once
per transport; each run gets its own namespace (a named memory hub, or a
unique Redis key prefix), so tests never see each other's messages.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tactor import Actor, ActorRef, ActorSystem

TRANSPORTS = ["memory", "redis"]
#: Contract modules that also run with every provider in a child process ("process": each
#: ``system.spawn`` goes to ``system.processes().spawn``, over the parent's memory hub).
PROCESS_CONTRACT = {
    "test_bad_input",
    "test_blocking",
    "test_broadcast",
    "test_calls",
    "test_cancellation",
    "test_dead_letters",
    "test_deadlines",
    "test_errors_say_where",
    "test_events",
    "test_mailbox",
    "test_subclass_endpoints",
}


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


def with_query(url: str, **params: str) -> str:
    """``url`` with extra query parameters."""
    sep = "&" if "?" in url else "?"
    return url + sep + "&".join(f"{k}={v}" for k, v in params.items())


def _parametrizes_url(metafunc: pytest.Metafunc) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        names = names.split(",") if isinstance(names, str) else names
        if "url" in (name.strip() for name in names):
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that takes ``url`` on every transport (and with process providers)."""
    if "url" in metafunc.fixturenames and not _parametrizes_url(metafunc):
        name = metafunc.module.__name__.rpartition(".")[2]
        in_process = metafunc.definition.get_closest_marker("in_process") is not None
        extra = ["process"] if name in PROCESS_CONTRACT and not in_process else []
        metafunc.parametrize("url", [*TRANSPORTS, *extra], indirect=True)


async def _spawn_in_process(
    self: ActorSystem, cls: type[Actor], /, *args: Any, **kwargs: Any
) -> ActorRef[Any]:
    return await self.processes().spawn(cls, *args, **kwargs)


@pytest.fixture
def url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A transport URL with a namespace of this test's own."""
    ns = f"t{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        yield f"memory://{ns}"
        return
    if request.param == "process":
        monkeypatch.setattr(ActorSystem, "spawn", _spawn_in_process)
        yield f"memory://{ns}"
        return
    if request.param == "redis":
        base = require_redis()
        prefix = f"tactor-test:{ns}"
        yield with_query(base, prefix=prefix)
        drop_keys(base, prefix)
        return
    raise AssertionError(f"unknown transport {request.param}")
