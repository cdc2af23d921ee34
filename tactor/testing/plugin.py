"""The pytest plugin (tactor's ``pytest11`` entry point ``tactor``). See docs/testing.md.

- ``async def`` tests run in a fresh event loop each (tests marked ``asyncio`` or
  ``anyio`` are left to those plugins);
- ``--tactor-url URL`` (repeatable; default ``memory://``) chooses the transports;
  ``tactor_url`` is one of them with a namespace of the test's own, and the tests
  that use it run once per URL;
- ``tactor_kit`` (an :class:`~tactor.testing.ActorTestKit`) and ``tactor_system``
  (its running :class:`~tactor.ActorSystem`) on ``tactor_url``: actors spawned with
  ``tactor_kit.spawn`` are stopped at the end, ``await tactor_kit.idle()`` waits
  until all is idle, ``await tactor_kit.capture(EventType)`` collects events, and a
  failure inside an actor (what tactor logs at ERROR) fails the test, unless it is
  marked ``tactor_allow_failures``.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable, Coroutine, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tactor import ActorSystem

from .kit import ActorTestKit
from .urls import fresh_url, nats_problem, nats_url, redis_problem, redis_url

__all__ = ["require_redis", "tactor_kit", "tactor_system", "tactor_url"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tactor")
    group.addoption(
        "--tactor-url",
        action="append",
        default=[],
        metavar="URL",
        help="a transport the tactor_url fixture runs tests on (repeatable; default memory://)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tactor_allow_failures: actors may fail (log at ERROR) during this test",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tactor_url" in metafunc.fixturenames:
        urls = metafunc.config.getoption("tactor_url") or ["memory://"]
        ids = [_transport_id(url, urls) for url in urls]
        metafunc.parametrize("tactor_url", urls, indirect=True, ids=ids)


def _transport_id(url: str, urls: list[str]) -> str:
    scheme = urlsplit(url).scheme
    same = [u for u in urls if urlsplit(u).scheme == scheme]
    return scheme if len(same) == 1 else f"{scheme}{same.index(url)}"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    if any(pyfuncitem.get_closest_marker(name) for name in ("asyncio", "anyio")):
        return None  # theirs
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    kit = pyfuncitem.funcargs.get("tactor_kit")
    assert kit is None or isinstance(kit, ActorTestKit)
    allowed = pyfuncitem.get_closest_marker("tactor_allow_failures") is not None
    asyncio.run(_run(pyfuncitem.obj, kwargs, kit, allowed))
    return True


async def _run(
    test: Callable[..., Coroutine[Any, Any, Any]],
    kwargs: dict[str, Any],
    kit: ActorTestKit | None,
    allowed: bool,
) -> None:
    if kit is None:
        await test(**kwargs)
        return
    async with kit:
        await test(**kwargs)
    if not allowed:
        kit.check()


@pytest.fixture
def tactor_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A transport URL of ``--tactor-url`` with a namespace of this test's own."""
    base: str = getattr(request, "param", "memory://")
    scheme = urlsplit(base).scheme
    if scheme.startswith("redis"):
        require_redis(base)
    elif scheme in ("nats", "tls"):
        require_nats(base)
    with fresh_url(base) as url:
        yield url


def require_redis(url: str | None = None) -> str:
    """``url`` (default: :func:`~tactor.testing.urls.redis_url`) if a Redis answers there;
    else the test is skipped, but fails under CI=true."""
    url = url or redis_url()
    problem = redis_problem(url.split("?")[0])
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem} (Redis tests must run under CI=true)")
        pytest.skip(problem)
    return url


def require_nats(url: str | None = None) -> str:
    """``url`` (default: :func:`~tactor.testing.urls.nats_url`) if a NATS with JetStream
    answers there; else the test is skipped, but fails under CI=true."""
    url = url or nats_url()
    problem = nats_problem(url.split("?")[0])
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem} (NATS tests must run under CI=true)")
        pytest.skip(problem)
    return url


@pytest.fixture
def tactor_kit(tactor_url: str) -> ActorTestKit:
    """An :class:`ActorTestKit` on a system of ``tactor_url``, started and closed around
    the test (an ``async def`` test)."""
    return ActorTestKit(ActorSystem(tactor_url))


@pytest.fixture
def tactor_system(tactor_kit: ActorTestKit) -> ActorSystem:
    """A running :class:`ActorSystem` on a namespace of this test's own (see tactor_kit)."""
    return tactor_kit.system
