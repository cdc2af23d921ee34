"""What operating tools stand on, on every transport: the registry of every endpoint with
each provider's node, host, pid, start and class; calls by name with JSON data; dead letters by
endpoint name; and a close that drains (the message in hand is finished and acknowledged,
or, past the drain timeout, handed back to be handled elsewhere)."""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import UTC, datetime

import pytest

from tactor import (
    Actor,
    ActorSystem,
    InvalidArguments,
    NoProvider,
    RemoteError,
    UnknownMethod,
)
from tactor.transports.base import endpoint_mailbox
from tests.cli_app import Pricing
from tests.helpers import eventually


async def test_endpoints_list_every_nodes_providers(url: str) -> None:
    async with ActorSystem(url) as one, ActorSystem(url) as two:
        before = datetime.now(UTC)
        a = await one.spawn(Pricing, "eu")
        b = await two.spawn(Pricing, "us")
        (found,) = await one.endpoints()
        assert found.name == "cli-pricing" and found.depth == 0
        assert {p.id: p.node for p in found.providers} == {a.id: one.node, b.id: two.node}
        for provider in found.providers:
            assert (provider.host, provider.pid) == (socket.gethostname(), os.getpid())
            assert provider.since is not None and provider.since >= before.replace(microsecond=0)
            assert provider.age is not None and provider.endpoint == "cli-pricing"
            assert provider.actor == "tests.cli_app:Pricing"
        # (the url fixture's memory:// URLs name a hub: two systems on it share it)
        assert (await two.endpoint_info(Pricing)).providers == found.providers
        await one.stop(a)
        assert [p.id for p in (await two.endpoint_info("cli-pricing")).providers] == [b.id]
        nobody = await one.endpoint_info("nobody")
        assert (nobody.providers, nobody.depth) == ((), 0)


async def test_calls_tells_broadcasts_and_events_by_name(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        items = [{"sku": "a", "qty": 2}]
        assert await system.call_json("cli-pricing", "quote", [items]) == "2.50"
        assert await system.call_json("cli-pricing", "quote", [], {"items": items}) == "2.50"
        assert await system.call_json("cli-pricing", "totals", [[["a", 1]]]) == {"a": 1}
        await system.tell_json("cli-pricing", "restock", ["a"], {"qty": 4})
        assert await system.call_json("cli-pricing", "stock_of", ["a"]) == 4
        result = await system.broadcast_json("cli-pricing", "where", timeout=5)
        assert (list(result), result.complete) == (["eu"], True)
        await system.publish_json("PriceChanged", {"sku": "a", "price": "2"})
        await system.publish_json("stock.eu.changed", {"sku": "b", "qty": 9}, type_name="X")
        await eventually(
            lambda: system.call_json("cli-pricing", "quote", [items]), lambda t: t == "4"
        )
        assert await system.call_json("cli-pricing", "stock_of", ["b"]) == 9

        with pytest.raises(InvalidArguments, match=r"items\[0\].qty"):
            await system.call_json("cli-pricing", "quote", [[{"sku": "a", "qty": "x"}]])
        with pytest.raises(UnknownMethod):
            await system.call_json("cli-pricing", "nope")
        with pytest.raises(RemoteError, match=r"tests\.cli_app\.OutOfStock: gone"):
            await system.call_json("cli-pricing", "fail", ["gone"])
        with pytest.raises(NoProvider):
            await system.call_json("nobody", "where")


async def test_dead_letters_by_endpoint_name(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        await system.transport.deliver(endpoint_mailbox("cli-pricing"), b"not json")
        (letter,) = await eventually(
            lambda: system.dead_letters("cli-pricing"), lambda found: len(found) == 1
        )
        assert letter.reason == "malformed" and letter.endpoint == "cli-pricing"
        assert [x.id for x in await system.dead_letters(Pricing)] == [letter.id]
        assert await system.discard(letter)


class Held(Actor, name="op-held"):
    """The first message it takes waits until released (or forever); the others do not."""

    taken: asyncio.Event
    release: asyncio.Event
    handled: list[int]

    async def work(self, x: int) -> int:
        cls = type(self)
        cls.handled.append(x)
        if len(cls.handled) == 1:
            cls.taken.set()
            await cls.release.wait()
        return x + 1


def fresh_held() -> None:
    Held.taken, Held.release, Held.handled = asyncio.Event(), asyncio.Event(), []


async def test_close_finishes_and_acknowledges_the_message_in_hand(url: str) -> None:
    fresh_held()
    async with ActorSystem(url) as caller:
        server = await ActorSystem(url).start()
        await server.spawn(Held)
        answer = asyncio.ensure_future(caller.call_json("op-held", "work", [1], timeout=30))
        await Held.taken.wait()
        closing = asyncio.ensure_future(server.close(drain_timeout=30))
        await eventually(lambda: caller.endpoint_info(Held), lambda e: not e.providers)
        Held.release.set()
        assert await answer == 2
        await closing
        # Acknowledged: nothing is left for a new provider, which handles only what is new.
        await caller.spawn(Held)
        assert await caller.call_json("op-held", "work", [5], timeout=30) == 6
        assert Held.handled == [1, 5]
        assert (await caller.endpoint_info(Held)).depth == 0


async def test_past_the_drain_timeout_the_message_goes_back(url: str) -> None:
    fresh_held()
    async with ActorSystem(url) as caller:
        server = await ActorSystem(url).start()
        await server.spawn(Held)
        answer = asyncio.ensure_future(caller.call_json("op-held", "work", [1], timeout=30))
        await Held.taken.wait()
        await server.close(drain_timeout=0.05)  # cancelled: not acknowledged
        await caller.spawn(Held)  # a provider elsewhere takes it and answers the caller
        assert await answer == 2
        assert Held.handled == [1, 1]
