"""The module-level API across init/shutdown cycles, and registrations withdrawn or refused.

The cases come from running pymq's own test suite against tactor's module API.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest

import tactor
from tactor import NoProvider, NotRunning, SchemaError
from tests.test_module_api import module_api

__all__ = ["module_api"]


class NoCodec:
    """A parameter type with no codec."""


@dataclass
class Ping:
    n: int


def first(x: int) -> str:
    return f"first {x}"


def second(x: int) -> str:
    return f"second {x}"


def typed_without_codec(x: NoCodec) -> int:
    return 1


class Counter:
    def __init__(self, start: int) -> None:
        self.start = start

    def add(self, n: int) -> int:
        return self.start + n


def test_shutdown_forgets_what_was_exposed_on_the_system(url: str, module_api: None) -> None:
    tactor.init(url)
    tactor.expose(first, name="x")
    assert tactor.stub("x", multi=True, timeout=2)(1) == ["first 1"]
    tactor.shutdown()
    tactor.init(url)
    with pytest.raises(NoProvider):
        tactor.stub("x", timeout=2)(1)
    tactor.expose(second, name="x")
    assert tactor.stub("x", multi=True, timeout=2)(1) == ["second 1"]


def subscribed_and_pinged(url: str) -> tuple[list[int], Callable[[Ping], None]]:
    """Init, subscribe a recorder on the running system, publish Ping(1) and see it arrive."""
    got: list[int] = []
    seen = threading.Event()

    def on_ping(event: Ping) -> None:
        got.append(event.n)
        seen.set()

    tactor.init(url)
    tactor.subscriber(on_ping)
    tactor.publish(Ping(1))
    assert seen.wait(5)
    return got, on_ping


def test_shutdown_forgets_subscribers_made_on_the_system(url: str, module_api: None) -> None:
    got, _ = subscribed_and_pinged(url)
    tactor.shutdown()
    tactor.init(url)
    assert tactor.publish(Ping(2)) in (0, None)  # nobody subscribes on the new system
    assert got == [1]


def test_declarations_made_before_init_serve_every_init(url: str, module_api: None) -> None:
    tactor.expose(first, name="declared")  # no system runs: a declaration
    for _ in range(2):
        tactor.init(url)
        assert tactor.stub("declared", multi=True, timeout=2)(7) == ["first 7"]
        tactor.shutdown()
    tactor.unexpose("declared")
    tactor.init(url)
    with pytest.raises(NoProvider):
        tactor.stub("declared", timeout=2)(7)


def test_a_failed_expose_is_not_registered(url: str, module_api: None) -> None:
    tactor.init(url)
    with pytest.raises(SchemaError, match=r"typed_without_codec uses NoCodec"):
        tactor.expose(typed_without_codec)
    tactor.shutdown()
    tactor.init(url)  # the failed registration does not haunt later inits
    tactor.expose(first, name=tactor.actors.functions.endpoint_name(typed_without_codec))


def test_init_that_cannot_serve_a_declaration_leaves_no_system(module_api: None) -> None:
    tactor.expose(typed_without_codec, name="needs_codec")
    with pytest.raises(SchemaError, match=r"typed_without_codec uses NoCodec"):
        tactor.init()
    with pytest.raises(NotRunning):
        tactor.system()
    tactor.unexpose(typed_without_codec)
    tactor.init()  # withdrawn: init works again


def test_one_name_is_exposed_once_per_process(url: str, module_api: None) -> None:
    tactor.init(url)
    tactor.expose(first, name="once")
    with pytest.raises(ValueError, match="'once' is already exposed"):
        tactor.expose(second, name="once")
    with pytest.raises(ValueError, match="already exposed"):
        tactor.expose(first, name="once")
    assert tactor.stub("once", multi=True, timeout=2)(1) == ["first 1"]
    tactor.unexpose(first)  # by function, though exposed under a name of its own
    tactor.expose(second, name="once")
    assert tactor.stub("once", multi=True, timeout=2)(1) == ["second 1"]
    tactor.unexpose("never exposed")  # withdrawing what is not served does nothing


def test_unsubscribe(url: str, module_api: None) -> None:
    got, on_ping = subscribed_and_pinged(url)
    tactor.unsubscribe(on_ping)
    assert tactor.publish(Ping(2)) in (0, None)
    assert got == [1]
    tactor.unsubscribe(on_ping)  # again: nothing to do


def test_stub_of_a_method_taken_from_its_class(url: str, module_api: None) -> None:
    tactor.init(url)
    tactor.expose(Counter(10).add)
    assert tactor.stub(Counter.add, timeout=2)(5) == 15
    assert tactor.stub(Counter(0).add, timeout=2)(1) == 11  # any instance names the endpoint
    with pytest.raises(SchemaError, match=r"Counter\.add is a method taken from its class"):
        tactor.expose(Counter.add)


def test_a_missing_hint_names_the_users_function() -> None:
    def untyped(x) -> int:  # type: ignore[no-untyped-def]
        return x  # type: ignore[no-any-return]

    with pytest.raises(SchemaError) as caught:
        tactor.expose(untyped)
    message = str(caught.value)
    assert "test_a_missing_hint_names_the_users_function.<locals>.untyped(x)" in message
    assert "Remote_" not in message and ".call" not in message


def test_a_withdrawn_function_is_no_longer_served(url: str, module_api: None) -> None:
    tactor.init(url)
    tactor.expose(first)
    assert tactor.stub(first, timeout=2)(1) == "first 1"
    tactor.unexpose(first)
    with pytest.raises(NoProvider):
        tactor.stub(first, timeout=2)(1)
    tactor.expose(first)  # and may be exposed again
    assert tactor.stub(first, timeout=2)(2) == "first 2"
