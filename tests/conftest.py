"""Shared fixtures: the ``url`` fixture that runs a test on every transport.

The suite runs on tactor's own pytest plugin (``tactor.testing.plugin``):
async tests are plain ``async def test_...`` functions, each run in a fresh
event loop; the Redis helpers below are the plugin's. Tests that take ``url``
run once per transport; each run gets its own namespace (a named memory hub,
or a unique Redis key prefix, or NATS stream and bucket prefix), so tests never
see each other's messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tactor import Actor, ActorRef, ActorSystem
from tactor.actors.forkserver import stop_fork_server
from tactor.testing.plugin import require_nats, require_redis
from tactor.testing.urls import drop_keys, drop_nats, fresh_url, nats_url, redis_url, with_query

__all__ = [
    "drop_keys",
    "drop_nats",
    "nats_url",
    "redis_url",
    "require_nats",
    "require_redis",
    "with_query",
]

TRANSPORTS = ["memory", "redis", "nats"]
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
    "test_prometheus",
    "test_stats",
    "test_subclass_endpoints",
}


#: Each transport's base URL (its test namespace comes from tactor.testing.urls.NAMESPACES).
BASES: dict[str, Callable[[], str]] = {
    "memory": lambda: "memory://",
    "redis": require_redis,
    "nats": require_nats,
}


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


@pytest.fixture(scope="session", autouse=True)
def _fork_server() -> Iterator[None]:
    """The fork server that process providers' tests start (at their first spawn) lives for
    the session, and is ended by pid at its end."""
    yield
    stop_fork_server()


@pytest.fixture
def url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A transport URL with a namespace of this test's own."""
    if request.param == "process":
        monkeypatch.setattr(ActorSystem, "spawn", _spawn_in_process)
    base = "memory" if request.param == "process" else request.param
    with fresh_url(BASES[base]()) as namespaced:
        yield namespaced
