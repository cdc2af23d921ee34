"""Bad input gets a typed error and a log line; the actor and the system keep serving."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import orjson
import pytest

from tactor import Actor, ActorSystem, PayloadTooLarge, UnknownMethod
from tactor.transports.base import endpoint_mailbox
from tests.model import Item, Pricing


class PricingV2(Actor, name="pricing"):
    """A newer interface of the same endpoint, with a method old providers lack."""

    async def where(self) -> str: ...
    async def discount(self, percent: int) -> int: ...


class Echo(Actor, name="echo"):
    async def echo(self, text: str) -> str:
        return text

    async def blow_up(self, n: int) -> str:
        return "x" * n


@pytest.mark.in_process
async def test_malformed_bytes_are_kept_as_dead_letters_with_a_log_line(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        mailbox = endpoint_mailbox("pricing")
        bad = [b"\xff\x00 not json", b'{"v": 1, "k": "call"}', orjson.dumps([1, 2, 3])]
        with caplog.at_level(logging.WARNING, logger="tactor"):
            for payload in bad:
                await system.transport.deliver(mailbox, payload)
            assert await system.proxy(Pricing).where() == "eu"
        malformed = [r for r in caplog.records if "malformed" in r.getMessage()]
        assert len(malformed) == 3, [r.getMessage() for r in caplog.records]
        letters = await system.dead_letters(Pricing)
        assert [(x.payload, x.reason) for x in letters] == [(p, "malformed") for p in bad]


@pytest.mark.in_process
async def test_unknown_method_is_a_typed_error(url: str, caplog: pytest.LogCaptureFixture) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        with (
            caplog.at_level(logging.WARNING, logger="tactor"),
            pytest.raises(UnknownMethod, match="discount"),
        ):
            await system.proxy(PricingV2).discount(10)
        assert any("discount" in r.getMessage() for r in caplog.records)
        assert await system.proxy(PricingV2).where() == "eu"


async def test_oversized_request_fails_before_sending(url: str) -> None:
    async with ActorSystem(url, max_payload=2_000) as system:
        await system.spawn(Pricing, "eu")
        with pytest.raises(PayloadTooLarge, match="max_payload=2000"):
            await system.proxy(Pricing).quote([Item("a", 1)] * 500)
        assert await system.proxy(Pricing).quote([Item("a", 1)]) == Decimal("1.50")


async def test_oversized_reply_is_an_error_reply(url: str) -> None:
    async with ActorSystem(url, max_payload=2_000) as system:
        await system.spawn(Echo)
        with pytest.raises(PayloadTooLarge, match="reply"):
            await system.proxy(Echo).blow_up(10_000)
        assert await system.proxy(Echo).echo("still here") == "still here"


async def test_provider_enforces_its_own_limit(url: str) -> None:
    async with ActorSystem(url, max_payload=1_000) as server, ActorSystem(url) as client:
        await server.spawn(Echo)
        with pytest.raises(PayloadTooLarge, match="request"):
            await client.proxy(Echo).echo("y" * 5_000)
        assert await client.proxy(Echo).echo("ok") == "ok"


async def test_a_request_it_cannot_read_is_answered_when_it_says_where(url: str) -> None:
    """A caller of another envelope version hears why at once instead of waiting."""
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        replies: asyncio.Queue[bytes] = asyncio.Queue()
        inbox = await system.transport.open_inbox("test-reader", replies.put_nowait, print)
        try:
            future = {"v": 99, "k": "call", "id": "m-1", "r": "test-reader", "ep": "pricing"}
            await system.transport.deliver(endpoint_mailbox("pricing"), orjson.dumps(future))
            reply = orjson.loads(await asyncio.wait_for(replies.get(), 10))
        finally:
            await inbox.close()
        assert reply["id"] == "m-1" and reply["ok"] is False
        assert reply["e"]["code"] == "malformed" and "could not read" in reply["e"]["message"]
        assert await system.proxy(Pricing).where() == "eu"
