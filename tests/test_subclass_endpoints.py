"""A subclass that names its own endpoint: method references reach that endpoint; classes
that share an endpoint are implementations of one class, not strangers with one name."""

from __future__ import annotations

import logging

import pytest

from tactor import Actor, ActorSystem, NoProvider, RemoteError, SchemaError
from tactor.actors.actor import kin


class Nope(Exception):
    pass


class Greeter(Actor, name="greeter"):
    def __init__(self, tag: str = "greeter") -> None:
        self.tag = tag

    async def who(self, suffix: str = "") -> str:
        return self.tag + suffix

    async def fail(self) -> None:
        raise Nope("no")


class Loud(Greeter, name="loud", errors=(Nope,)):
    async def shout(self) -> str:
        return (await self.who("!")).upper()


class Polite(Greeter):  # no name: serves its parent's endpoint
    pass


class Twin(Greeter):  # a sibling of Polite: another implementation of "greeter"
    async def who(self, suffix: str = "") -> str:
        return "twin" + suffix


class Again(Loud, name="greeter"):  # names its grandparent's endpoint again
    pass


class Stranger(Actor, name="greeter"):  # shares the name, not the interface
    async def who(self, suffix: int = 0) -> int:
        return suffix


def test_kin_is_one_class_even_as_the_script() -> None:
    assert kin("shop.pricing:Pricing", "shop.pricing:Pricing")
    # A script's classes are __main__'s in its process, its module's where imported.
    assert kin("__main__:Pricing", "shop:Pricing") and kin("shop:Pricing", "__main__:Pricing")
    assert not kin("shop:Pricing", "other:Pricing")
    assert not kin("__main__:Pricing", "shop:Quotes")


def test_inherited_method_references_belong_to_the_subclass() -> None:
    assert Loud.who is not Greeter.who
    assert Loud.who.__qualname__ == Greeter.who.__qualname__  # same code, same tracebacks
    assert Polite.who is not Greeter.who


async def test_method_references_reach_the_class_endpoint(url: str) -> None:
    async with ActorSystem(url, timeout=5) as system:
        await system.spawn(Greeter)
        await system.spawn(Loud, "loud")
        assert await system.call(Loud.who) == "loud"
        assert await system.call(Greeter.who) == "greeter"
        assert await system.call(Polite.who, "?") == "greeter?"
        assert await system.proxy(Loud).who() == "loud"
        assert await system.call(Loud.shout) == "LOUD!"
        everyone = await system.broadcast(Loud.who)
        assert list(everyone) == ["loud"] and everyone.complete
        assert list(await system.broadcast(Greeter.who)) == ["greeter"]


async def test_tell_to_a_subclass_goes_to_its_endpoint(url: str) -> None:
    async with ActorSystem(url, timeout=5) as system:
        await system.spawn(Greeter)
        # Nobody serves "loud": the tell must not land in "greeter"'s mailbox.
        with pytest.raises(NoProvider, match="loud"):
            await system.tell(Loud.who)


async def test_the_subclass_errors_apply_to_its_inherited_methods(url: str) -> None:
    async with ActorSystem(url, timeout=5) as system:
        await system.spawn(Greeter)
        await system.spawn(Loud)
        with pytest.raises(Nope):  # listed in Loud's errors=
            await system.call(Loud.fail)
        with pytest.raises(RemoteError, match="Nope"):  # not in Greeter's
            await system.call(Greeter.fail)


async def test_an_unrelated_class_cannot_serve_an_endpoint_served_here(url: str) -> None:
    async with ActorSystem(url, timeout=5) as system:
        await system.spawn(Greeter)
        with pytest.raises(SchemaError) as caught:
            await system.spawn(Stranger)
        message = str(caught.value)
        assert ":Stranger cannot serve the endpoint 'greeter': " in message
        assert ":Greeter serves it here" in message
        assert "name=" in message and "a subclass of" in message
        # Nothing of it started: Greeter alone serves, and answers every call.
        assert len(await system.providers(Greeter)) == 1
        assert [ref.actor_class for ref in system.refs()] == [Greeter]
        for _ in range(4):
            assert await system.call(Greeter.who, "?") == "greeter?"


async def test_implementations_of_one_endpoint_serve_it_side_by_side(url: str) -> None:
    async with ActorSystem(url, timeout=5) as system:
        for cls in (Polite, Greeter, Twin, Again):
            await system.spawn(cls)
        everyone = await system.broadcast(Greeter.who, "!")
        assert everyone.complete
        assert sorted(everyone) == ["greeter!", "greeter!", "greeter!", "twin!"]


async def test_an_endpoint_is_free_again_once_its_providers_are_gone(url: str) -> None:
    async with ActorSystem(url, timeout=5) as system:
        first = await system.spawn(Greeter)
        second = await system.spawn(Polite)
        await system.stop(first)
        with pytest.raises(SchemaError, match="Polite serves it here"):
            await system.spawn(Stranger)
        await system.stop(second)
        await system.spawn(Stranger)
        assert await system.call(Stranger.who, 3) == 3


@pytest.mark.in_process  # (what a child process logs is not captured here)
async def test_another_node_serving_the_name_with_an_unrelated_class_is_warned_of(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Nodes do not refuse each other (a deployment may rename a class), but the registry
    says what each provider runs: a node that spawns a stranger logs who else serves."""
    async with ActorSystem(url) as one, ActorSystem(url) as two, ActorSystem(url) as three:
        await one.spawn(Greeter)
        with caplog.at_level(logging.WARNING, logger="tactor.actors.spawning"):
            await two.spawn(Again)  # kin of Greeter (a subclass that names it again)
            assert caplog.records == []
            ref = await three.spawn(Stranger)  # served: only warned of
        (warned,) = caplog.records
        assert ":Stranger serves the endpoint 'greeter' that " in warned.getMessage()
        nodes = [f":Greeter serves on node {node.node} " for node in (one, two)]
        assert any(said in warned.getMessage() for said in nodes)  # either says Greeter
        assert ref.id in await one.providers(Greeter)
