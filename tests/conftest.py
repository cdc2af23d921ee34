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

import pytest

TRANSPORTS = ["memory"]


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


@pytest.fixture(params=TRANSPORTS)
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A transport URL with a namespace of this test's own."""
    ns = f"t{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        yield f"memory://{ns}"
        return
    raise AssertionError(f"unknown transport {request.param}")
