"""The module-level API, tried with pymq's README examples (renamed), in one and many processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

import tactor
from tactor import NoProvider, NotRunning, SchemaError
from tactor.actors import default
from tests import pymq_style
from tests.conftest import require_redis, with_query
from tests.process_model import Crasher
from tests.pymq_style import MyEvent, Remote, product
from tests.test_processes import _alive


@pytest.fixture
def module_api() -> Iterator[None]:
    """Leave the module-level registrations as they were, and shut down."""
    tactor.shutdown()  # what a test registers on a running system is forgotten here
    remotes, subscribers = dict(default._remotes), list(default._subscribers)
    pymq_style.received.clear()
    pymq_style.got_event.clear()
    try:
        yield
    finally:
        tactor.shutdown()
        # Declarations a test made while no system ran: put back the import-time ones.
        default._remotes.clear()
        default._remotes.update(remotes)
        default._subscribers[:] = subscribers


def test_pymq_readme_examples(url: str, module_api: None) -> None:
    tactor.init(url)
    # pub/sub by event class
    reached = tactor.publish(MyEvent("hello"))
    assert reached in (1, None)
    assert pymq_style.got_event.wait(5)
    assert pymq_style.received == [MyEvent("hello")]
    # RPC by name and by callable, with keyword arguments and defaults
    assert tactor.stub("product_remote", timeout=2)(2, 4) == 8
    assert tactor.stub(product)(3, 4) == 12
    assert tactor.stub(product)(a=5, b=2) == 10
    assert tactor.stub(pymq_style.greet)("ann") == "hello ann!"
    assert tactor.stub(pymq_style.greet)("bob", punctuation="?") == "hello bob?"
    # coercion by type hints: the provider validates what arrives
    with pytest.raises(tactor.InvalidArguments):
        tactor.stub("product_remote")("two", 4)
    # expose a bound method; multi with timeout
    tactor.expose(Remote("here").echo, "remote_echo")
    assert tactor.stub("remote_echo", multi=True, timeout=2)("hi") == ["echo from here: hi"]
    # nobody provides it
    with pytest.raises(NoProvider):
        tactor.stub("nobody_serves_this")(1)


def test_registrations_after_init_take_effect_at_once(module_api: None) -> None:
    tactor.init()

    @tactor.remote("late")
    async def late(x: int) -> int:
        return x + 1

    assert tactor.stub(late)(1) == 2
    assert tactor.stub("late")(41) == 42


class Lookalike(tactor.Actor, name="lookalike"):
    async def call(self, x: int) -> int:
        return -x


def test_a_function_and_a_class_cannot_share_an_endpoint(module_api: None) -> None:
    def lookalike(x: int) -> int:
        return x + 1

    tactor.init()
    tactor.expose(lookalike, name="lookalike")
    with pytest.raises(SchemaError, match="lookalike serves it here") as caught:
        tactor.system().spawn(Lookalike)
    assert "subclass" not in str(caught.value)  # a function has no subclasses
    assert tactor.stub("lookalike")(1) == 2  # served by the function alone
    assert tactor.system().endpoint_info("lookalike").providers[0].actor == (
        f"{__name__}:test_a_function_and_a_class_cannot_share_an_endpoint.<locals>.lookalike"
    )


def test_the_default_system_needs_init(module_api: None) -> None:
    with pytest.raises(tactor.NotRunning, match="init"):
        tactor.publish(MyEvent("x"))


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.slow
def test_module_level_process_providers(module_api: None) -> None:
    with pytest.raises(NotRunning, match=r"tactor\.init"):
        tactor.processes()
    tactor.init()
    ref = tactor.processes(restart="never").spawn(Crasher, "q")
    refs = tactor.processes().spawn_many(2, Crasher, "q")
    pids = {tactor.system().call(Crasher.pid, provider=r) for r in [ref, *refs]}
    assert len(pids) == 3 and os.getpid() not in pids
    assert sorted(tactor.system().providers(Crasher)) == sorted(r.id for r in [ref, *refs])
    tactor.shutdown()  # drains the children
    assert [pid for pid in pids if _alive(pid)] == []


def test_pymq_examples_across_processes(module_api: None) -> None:
    url = with_query(require_redis(), prefix=f"tactor-test:{uuid.uuid4().hex[:12]}")
    child = subprocess.Popen(
        [sys.executable, "-c", f"from tests.pymq_style import serve; serve({url!r})"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        tactor.init(url)
        tactor.expose(Remote("parent").echo, "remote_echo")
        # Two processes serve product_remote and remote_echo now.
        answers = tactor.stub("remote_echo", multi=True, timeout=2)("x")
        assert sorted(answers) == ["echo from child: x", "echo from parent: x"]
        assert tactor.stub("product_remote", multi=True, timeout=2)(6, 7) == [42, 42]
        # Events reach the subscriber in the other process too: ask both processes.
        tactor.publish(MyEvent("across"))
        seen = tactor.stub(pymq_style.events_seen, multi=True, timeout=2)
        deadline = time.monotonic() + 5
        while seen() != [["across"], ["across"]] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen() == [["across"], ["across"]]
    finally:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.close()
        child.wait(20)
        child.stdout.close()
    assert child.returncode == 0


def test_untyped_arguments_travel_by_the_codecs_rules() -> None:
    """A stub by name with no local definition encodes arguments by their runtime types."""
    from decimal import Decimal

    from tactor import JsonCodec
    from tactor.actors.schema import untyped_method

    _, method = untyped_method("somewhere", "call")
    named, positional = method.encode(
        JsonCodec(), (MyEvent("total"), Decimal("9.50"), {"tags": {"a"}}), {"when": None}
    )
    assert positional == [{"text": "total"}, "9.50", {"tags": ["a"]}]
    assert named == {"when": None}
    with pytest.raises(tactor.EncodeError, match="str keys"):
        method.encode(JsonCodec(), ({1: "x"},), {})
