"""Process providers under real faults: SIGKILL, os._exit, a segfault, a parent SIGKILLed;
supervision (restart policies, back-off, the cap) and the drain's escalation."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import pytest

from tactor import ActorSystem, CallError, InvalidArguments, RemoteError
from tests.helpers import eventually
from tests.process_model import Crasher, Stubborn
from tests.test_processes import _alive

pytestmark = pytest.mark.slow


async def _records(system: ActorSystem, name: str, n: int) -> list[str]:
    queue = system.queue(name, str)
    return [await queue.get(timeout=20) for _ in range(n)]


@pytest.mark.parametrize("death", ["sigkill", "exit", "segfault"])
async def test_a_dead_child_leaves_at_once_and_its_message_goes_to_another(death: str) -> None:
    async with ActorSystem() as system:
        doomed = "hang" if death == "sigkill" else death
        await system.processes(restart="never").spawn(Crasher, "records", doomed)
        pid = await system.call(Crasher.pid)
        await system.tell(Crasher.job, "j1")
        assert await _records(system, "records", 1) == [f"started j1 {pid}"]  # taken, in hand
        survivor = await system.processes().spawn(Crasher, "records")
        other = await system.call(Crasher.pid, provider=survivor)
        if death == "sigkill":
            os.kill(pid, signal.SIGKILL)
        await eventually(lambda: system.providers(Crasher), lambda p: p == [survivor.id])
        assert await _records(system, "records", 2) == [f"started j1 {other}", f"done j1 {other}"]
        assert not _alive(pid)


async def test_a_message_that_crashes_every_child_ends_in_the_dead_letters() -> None:
    async with ActorSystem(max_deliveries=2) as system:
        ref = await system.processes().spawn(Crasher, "records", "segfault")
        await system.tell(Crasher.job, "poison")
        letters = await eventually(lambda: system.dead_letters(Crasher), bool, timeout=20)
        assert [(letter.method, letter.attempts) for letter in letters] == [("job", 2)]
        records = await _records(system, "records", 2)
        assert [r.rpartition(" ")[0] for r in records] == ["started poison"] * 2
        assert len({r.rpartition(" ")[2] for r in records}) == 2  # two processes, each died
        assert await system.providers(Crasher) == [ref.id]  # and it serves on


async def _pid_changes(system: ActorSystem, old: int) -> int:
    async def probe() -> int | None:
        try:
            return await system.call(Crasher.pid, timeout=1)
        except CallError:
            return None

    new = await eventually(probe, lambda pid: pid is not None and pid != old, timeout=10)
    assert new is not None
    return new


async def test_on_failure_restarts_a_crashed_child_under_the_same_provider_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "tactor")
    async with ActorSystem() as system:
        ref = await system.processes(restart="on-failure").spawn(Crasher, "q")
        first = await system.call(Crasher.pid)
        await system.tell(Crasher.segfault_soon)
        second = await _pid_changes(system, first)
        assert await system.providers(Crasher) == [ref.id]
        assert await system.call(Crasher.pid, provider=ref) == second
        assert any("exited (signal SIGSEGV); restarting" in r.getMessage() for r in caplog.records)


async def test_on_failure_leaves_a_clean_exit_down_and_always_restarts_it() -> None:
    async with ActorSystem() as system:
        await system.processes(restart="on-failure").spawn(Crasher, "q")
        await system.tell(Crasher.exit_soon, 0)
        await eventually(lambda: system.providers(Crasher), lambda p: p == [])
        always = await system.processes(restart="always").spawn(Crasher, "q")
        first = await system.call(Crasher.pid)
        await system.tell(Crasher.exit_soon, 0)
        await _pid_changes(system, first)
        assert await system.providers(Crasher) == [always.id]


async def test_sys_exit_in_a_handler_answers_the_caller_and_the_child_exits_with_its_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SystemExit ends the child (as it ends a program), after its caller is answered: the
    child drains (it hands in its last counts) and exits with the code given, so the restart
    policy reads it as meant."""
    caplog.set_level(logging.WARNING, "tactor")
    async with ActorSystem(timeout=20) as system:
        clean = await system.processes(restart="on-failure").spawn(Crasher, "q")
        pid = await system.call(Crasher.pid, provider=clean)
        with pytest.raises(RemoteError, match=r"SystemExit: 0 in crasher\.leave"):
            await system.call(Crasher.leave, 0)  # answered at once, not at the deadline
        await eventually(lambda: system.providers(Crasher), lambda p: p == [])  # not restarted

        async def exited() -> bool:
            return not _alive(pid)

        await eventually(exited, bool)
        left = (await system.stats()).method("crasher", "leave")
        assert left is not None and dict(left.handler_failed) == {"builtins.SystemExit": 1}
        failing = await system.processes(restart="on-failure").spawn(Crasher, "q")
        first = await system.call(Crasher.pid)
        with pytest.raises(RemoteError, match="SystemExit: 3"):
            await system.call(Crasher.leave, 3)
        second = await _pid_changes(system, first)  # restarted, under the same provider id
        assert await system.providers(Crasher) == [failing.id]
        with pytest.raises(RemoteError, match="SystemExit: why"):
            await system.call(Crasher.leave, "why")  # exit status 1, as Python gives it
        await _pid_changes(system, second)
    exits = [r.getMessage() for r in caplog.records if " exited (" in r.getMessage()]
    assert exits[:2] == [
        f"{clean.id} exited (exit code 0); not restarted (restart='on-failure')",
        f"{failing.id} exited (exit code 3); restarting in 0.1s",
    ]
    assert exits[2].startswith(f"{failing.id} exited (exit code 1); restarting in ")


async def test_never_leaves_a_crashed_child_down() -> None:
    async with ActorSystem() as system:
        await system.processes(restart="never").spawn(Crasher, "q")
        os.kill(await system.call(Crasher.pid), signal.SIGKILL)
        await eventually(lambda: system.providers(Crasher), lambda p: p == [])


async def test_past_max_restarts_it_stays_down_with_an_error_naming_the_signal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "tactor")
    async with ActorSystem() as system:
        processes = system.processes(max_restarts=2, restart_window=60)
        await processes.spawn(Crasher, "q")
        pid = await system.call(Crasher.pid)
        for _ in range(2):
            os.kill(pid, signal.SIGKILL)
            pid = await _pid_changes(system, pid)
        os.kill(pid, signal.SIGKILL)
        await eventually(lambda: system.providers(Crasher), lambda p: p == [])
        await eventually(
            lambda: asyncio.sleep(0, [r for r in caplog.records if r.levelno == logging.ERROR]),
            lambda errors: len(errors) == 1,
        )
        messages = [r.getMessage() for r in caplog.records]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "exited (signal SIGKILL); it was restarted 2 times within 60s" in errors[0]
    waits = [m.rpartition("restarting in ")[2] for m in messages if "restarting in" in m]
    assert waits == ["0.1s", "0.2s"]  # the back-off doubles


async def test_a_child_that_will_not_drain_gets_sigterm_then_sigkill(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "tactor")
    async with ActorSystem(stop_grace=0.5) as system:
        ref = await system.processes().spawn(Stubborn)
        await system.tell(Stubborn.block, 30)
        await system.stop(ref)
        assert await system.providers(Stubborn) == []
    messages = [r.getMessage() for r in caplog.records]
    assert any("sending SIGTERM" in m for m in messages)
    assert any("sending SIGKILL" in m for m in messages)


async def test_children_die_with_a_sigkilled_parent() -> None:
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.process_parent", stdout=asyncio.subprocess.PIPE
    )
    assert parent.stdout is not None
    pids: list[int] = []
    try:
        line = await asyncio.wait_for(parent.stdout.readline(), 30)
        pids = [int(p) for p in line.split()[1:]]  # two children and the fork server
        assert len(pids) == 3 and all(_alive(pid) for pid in pids), line
        parent.kill()
        await parent.wait()
        await eventually(lambda: asyncio.sleep(0, [p for p in pids if _alive(p)]), lambda a: not a)
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
        for pid in pids:  # only if the test failed: leave nothing behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


async def test_bad_input_to_a_child_is_an_error_not_a_crash() -> None:
    async with ActorSystem() as system:
        ref = await system.processes().spawn(Crasher, "q")
        pid = await system.call(Crasher.pid)
        with pytest.raises(InvalidArguments):
            await system.call(Crasher.exit_soon, "not an int")  # type: ignore[arg-type]
        assert await system.call(Crasher.pid, provider=ref) == pid
