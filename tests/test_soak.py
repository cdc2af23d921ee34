"""The fault soak in the suite (about a minute): see benchmarks/soak.py.

Three provider processes on Redis serve calls and a stream of tells while
providers are SIGKILLed and replaced, the Redis server (AOF, fsync always) is
SIGKILLed and started again once, and it is made a replica of another server
for a moment, then the primary again (the READONLY flip). Every call ends with
the right value or a typed TactorError, none past its deadline plus a small
grace; every tell that ``tell()`` accepted is handled at least once; service is
back within a few seconds of the restart and of the flip. The counts are
printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import pytest

from benchmarks.soak import SoakPlan, run_soak
from tests.conftest import require_redis
from tests.servers import redis_server_binary

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.mark.timeout(150)
async def test_fault_soak() -> None:
    redis_server_binary()  # skips without one (fails under CI=true)
    plan = SoakPlan(duration=35.0, kills=5, restarts=1, flips=1)
    counts = await run_soak(require_redis(), plan)
    print("\n".join(counts.lines()))
    for example in counts.examples:
        print("  example:", example)
    assert counts.kills == plan.kills and counts.restarts == plan.restarts
    assert counts.flips == plan.flips
    assert counts.calls and counts.accepted
    assert counts.problems(plan) == []
