"""Providers in child processes: spawning, errors at spawn, nested calls, Redis children.

The contract suite also runs with every provider in a child process (the
``process`` variant of the ``url`` fixture); these tests cover what only
process providers have.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import types
from decimal import Decimal
from pathlib import Path

import pytest

from tactor import (
    Actor,
    ActorSystem,
    BlockingSystem,
    ConfigError,
    NotRunning,
    Processes,
    SchemaError,
    SpawnError,
)
from tests.conftest import drop_keys, require_redis, with_query
from tests.helpers import eventually
from tests.model import Item, Pricing
from tests.process_model import Burner, Crasher, FailsToStart, Relay, Unhinted

pytestmark = pytest.mark.slow


async def test_a_process_provider_serves_calls_off_this_process() -> None:
    async with ActorSystem() as system:
        ref = await system.processes().spawn(Crasher, "q")
        crasher = system.proxy(Crasher)
        pid = await crasher.pid()
        assert pid != os.getpid()
        assert await system.providers(Crasher) == [ref.id]
        assert ref in system.refs()
        assert await system.call(Crasher.pid, provider=ref) == pid


async def test_spawn_many_starts_a_pool_of_processes() -> None:
    async with ActorSystem() as system:
        refs = await system.processes().spawn_many(3, Burner)
        assert sorted(await system.providers(Burner)) == sorted(r.id for r in refs)
        results = await system.broadcast(Burner.burn, 1000)
        assert sorted(o.provider for o in results.outcomes) == sorted(r.id for r in refs)
        assert all(o.ok for o in results.outcomes)
        with pytest.raises(ConfigError, match="n >= 1"):
            await system.processes().spawn_many(0, Burner)


async def test_constructor_arguments_travel_through_the_codec() -> None:
    async with ActorSystem() as system:
        await system.processes().spawn(Pricing, "eu")
        assert await system.proxy(Pricing).quote([Item("a", 2)], "HALF") == Decimal("1.50")


async def test_a_constructor_without_type_hints_is_a_schema_error_at_spawn() -> None:
    async with ActorSystem() as system:
        with pytest.raises(SchemaError, match=r"Unhinted.__init__\(region\).*no type hint"):
            await system.processes().spawn(Unhinted, "eu")
        assert await system.providers(Unhinted) == []


async def test_a_class_the_child_cannot_import_is_a_spawn_error_not_a_hang() -> None:
    module = types.ModuleType("tests_made_at_runtime")
    source = "from tactor import Actor\nclass Ghost(Actor):\n    async def ping(self) -> None: ..."
    exec(source, module.__dict__)
    sys.modules[module.__name__] = module
    try:
        async with ActorSystem() as system:
            with pytest.raises(SpawnError, match="cannot import tests_made_at_runtime:Ghost"):
                await system.processes().spawn(module.Ghost)
            assert await system.providers(module.Ghost) == []
    finally:
        del sys.modules[module.__name__]


UNGUARDED = """
import asyncio
from tactor import Actor, ActorSystem

class Echo(Actor, name="unguarded-echo"):
    async def echo(self, x: int) -> int:
        return x

async def main() -> None:
    async with ActorSystem() as system:
        await system.processes().spawn(Echo)

asyncio.run(main())  # not under `if __name__ == "__main__":`: the child runs it too
"""


def test_a_script_without_its_main_guard_is_told_where_its_work_belongs(tmp_path: Path) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("tactor.errors.SpawnError: unguarded-echo@"), run.stderr
    assert "asyncio.run() cannot be called from a running event loop" in last
    assert 'without its `if __name__ == "__main__":` block' in last


async def test_a_class_defined_in_a_function_is_refused_at_once() -> None:
    class Local(Actor):
        async def ping(self) -> None: ...

    async with ActorSystem() as system:
        with pytest.raises(SpawnError, match="top level of a module or script"):
            await system.processes().spawn(Local)


async def test_a_constructor_that_raises_in_the_child_is_a_spawn_error() -> None:
    async with ActorSystem() as system:
        with pytest.raises(SpawnError, match="RuntimeError: no database"):
            await system.processes().spawn(FailsToStart, "no database")
        assert await system.providers(FailsToStart) == []


async def test_a_bad_restart_policy_is_a_config_error() -> None:
    async with ActorSystem() as system:
        with pytest.raises(ConfigError, match="restart='sometimes'"):
            system.processes(restart="sometimes")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="max_restarts"):
            system.processes(max_restarts=-1)


async def test_spawn_given_process_options_points_to_processes() -> None:
    """``spawn(cls, ..., process=True)`` (as other libraries spell it) is the constructor's
    TypeError, saying where a child process is asked for."""
    async with ActorSystem() as system:
        with pytest.raises(TypeError, match=r"'process'.*use system.processes\(\).spawn\(Pricing"):
            await system.spawn(Pricing, "eu", process=True)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="'zone'") as raised:
            await system.spawn(Pricing, "eu", zone=1)  # type: ignore[call-arg]
        assert "processes()" not in str(raised.value)  # any other keyword: Python's own error
        assert await system.providers(Pricing) == []


async def test_nested_calls_reach_the_parent_and_other_children() -> None:
    async with ActorSystem() as system:
        here = await system.spawn(Pricing, "eu")  # in this process
        await system.processes().spawn(Crasher, "q")
        await system.processes().spawn(Relay)
        relay = system.proxy(Relay)
        assert await relay.quote_via(here.id) == "3.00"
        crasher_pid = await system.call(Crasher.pid)
        assert await relay.pid_of_crasher() == crasher_pid != os.getpid()


async def test_children_share_the_parents_queues_and_events() -> None:
    async with ActorSystem() as system:
        await system.processes().spawn(Crasher, "records")
        await system.call(Crasher.job, "a")
        records = system.queue("records", str)
        pid = await system.call(Crasher.pid)
        assert [await records.get(), await records.get()] == [f"started a {pid}", f"done a {pid}"]


async def test_stop_drains_the_message_in_hand_then_the_process_exits() -> None:
    async with ActorSystem() as system:
        ref = await system.processes().spawn(Crasher, "records")
        pid = await system.call(Crasher.pid)
        call = asyncio.ensure_future(system.call(Crasher.slow, 0.5))
        assert await system.queue("records", str).get() == f"slow {pid}"  # in hand
        await system.stop(ref)
        assert await call == f"slept {pid}"
        assert await system.providers(Crasher) == []
        assert ref not in system.refs()


async def test_a_message_that_comes_to_a_child_as_it_stops_goes_back_not_attempted() -> None:
    """A child's reply asks for its next message at once: one waiting then is handed to
    it as it stops. It goes back as it was, counted as attempted only by a provider that
    begins it (with max_deliveries=1, a second count would set it aside unhandled)."""
    async with ActorSystem(max_deliveries=1) as system:
        ref = await system.processes().spawn(Crasher, "records")
        pid = await system.call(Crasher.pid)
        records = system.queue("records", str)
        call = asyncio.ensure_future(system.call(Crasher.slow, 0.5))
        assert await records.get() == f"slow {pid}"  # in hand
        await system.tell(Crasher.job, "next")  # waits behind it
        await system.stop(ref)
        assert await call == f"slept {pid}"
        other = await system.processes().spawn(Crasher, "records")
        other_pid = await system.call(Crasher.pid, provider=other)
        assert [await records.get(timeout=10) for _ in range(2)] == [
            f"started next {other_pid}",
            f"done next {other_pid}",
        ]
        assert await system.dead_letters(Crasher) == []


async def test_leaving_the_block_drains_every_child() -> None:
    async with ActorSystem() as system:
        await system.processes().spawn_many(2, Crasher, "q")
        pids = [o.value for o in (await system.broadcast(Crasher.pid)).outcomes]
    for pid in pids:
        assert not _alive(pid)


async def test_redis_children_connect_to_the_same_redis() -> None:
    base = require_redis()
    prefix = f"tactor-test:p{os.urandom(6).hex()}"
    try:
        async with ActorSystem(with_query(base, prefix=prefix)) as system:
            ref = await system.processes(restart="never").spawn(Crasher, "q")
            pid = await system.call(Crasher.pid)
            assert pid != os.getpid()
            assert await system.providers(Crasher) == [ref.id]
            os.kill(pid, 9)
            await eventually(lambda: system.providers(Crasher), lambda p: p == [], timeout=5)
    finally:
        drop_keys(base, prefix)


def test_a_blocking_system_spawns_process_providers() -> None:
    with BlockingSystem() as system:
        pool = system.processes(restart="never")
        assert isinstance(pool.aio, Processes)
        ref = pool.spawn(Crasher, "q")
        more = pool.spawn_many(2, Crasher, queue="q")
        refs = [ref, *more]
        pids = {system.call(Crasher.pid, provider=r) for r in refs}
        assert len(pids) == 3 and os.getpid() not in pids
        assert sorted(system.providers(Crasher)) == sorted(r.id for r in refs)
        system.stop(ref)
        assert sorted(system.providers(Crasher)) == sorted(r.id for r in more)
        with pytest.raises(ConfigError, match="restart='sometimes'"):
            system.processes(restart="sometimes")  # type: ignore[arg-type]
        with pytest.raises(SpawnError, match="top level of a module or script"):
            pool.spawn(_local_class())
    assert [pid for pid in pids if _alive(pid)] == []
    with pytest.raises(NotRunning):
        system.processes()


def _local_class() -> type[Actor]:
    class Local(Actor):
        async def ping(self) -> None: ...

    return Local


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie waiting to be reaped is not)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" not in status.read()
    except FileNotFoundError:
        return False
