"""A subclass that names its own endpoint: method references reach that endpoint."""

from __future__ import annotations

import pytest

from tactor import Actor, ActorSystem, NoProvider, RemoteError


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
