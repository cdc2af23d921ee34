"""Shared fixtures: the ``url`` fixture that runs a test on every transport.

The suite runs on tactor's own pytest plugin (``tactor.testing.plugin``):
async tests are plain ``async def test_...`` functions, each run in a fresh
event loop; the Redis helpers below are the plugin's. Tests that take ``url``
run once per transport; each run gets its own namespace (a named memory hub,
or a unique Redis key prefix), so tests never see each other's messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tactor.testing.plugin import require_redis
from tactor.testing.urls import drop_keys, fresh_url, redis_url, with_query

__all__ = ["drop_keys", "redis_url", "require_redis", "with_query"]

TRANSPORTS = ["memory", "redis"]


#: Each transport's base URL (its test namespace comes from tactor.testing.urls.NAMESPACES).
BASES: dict[str, Callable[[], str]] = {"memory": lambda: "memory://", "redis": require_redis}


@pytest.fixture(params=TRANSPORTS)
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A transport URL with a namespace of this test's own."""
    with fresh_url(BASES[request.param]()) as namespaced:
        yield namespaced
