"""Bad input gets a typed error and a log line; the actor and the system keep serving."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import orjson
import pytest

from tactor import Actor, ActorSystem, EncodeError, PayloadTooLarge, UnknownMethod
from tactor.transports.base import endpoint_mailbox
from tests.helpers import eventually
from tests.model import Item, PriceChanged, Pricing


class PricingV2(Actor, name="pricing"):
    """A newer interface of the same endpoint, with a method old providers lack."""

    async def where(self) -> str: ...
    async def discount(self, percent: int) -> int: ...


class PricingNext(Actor, name="pricing"):
    """A provider of the newer interface (PricingV2's), deployed after its tells were sent."""

    def __init__(self) -> None:
        self.discounts: list[int] = []

    async def where(self) -> str:
        return "next"

    async def discount(self, percent: int) -> int:
        self.discounts.append(percent)
        return percent

    async def discounts_given(self) -> list[int]:
        return self.discounts


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
        await client.tell(Echo.echo, "z" * 5_000)  # nobody waits: kept in the dead letters
        assert await client.proxy(Echo).echo("ok") == "ok"
        (letter,) = await client.dead_letters(Echo)
        assert (letter.reason, letter.kind, letter.args) == (
            "rejected",
            "tell",
            {"text": "z" * 5_000},
        )
        assert letter.detail.startswith("payload_too_large: request is ")
        assert letter.detail.endswith(" bytes, over max_payload=1000")


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


async def test_a_tell_whose_arguments_do_not_fit_is_refused_at_the_sender(url: str) -> None:
    """Nobody waits for a tell's outcome: arguments its provider would not read are an
    EncodeError at ``tell``, not a message accepted and then lost."""
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        fits = r"tell Pricing.restock: the arguments do not fit: qty: expected int, got"
        with pytest.raises(EncodeError, match=f"{fits} str"):
            await system.tell(Pricing.restock, "a", "many")  # type: ignore[arg-type]
        with pytest.raises(EncodeError, match=f"{fits} bool"):
            await system.tell(Pricing.restock, "a", True)  # an int to Python, not on the wire
        await system.tell(Pricing.restock, "a", 3)
        assert await system.call(Pricing.stock_of, "a") == 3  # the only one that went out
        assert await system.dead_letters(Pricing) == []


async def test_a_tell_its_provider_rejects_is_kept_in_the_dead_letters(url: str) -> None:
    """A tell an older provider cannot take (a method it lacks; arguments of another shape,
    sent by name) is moved aside, not dropped: a provider that can take it replays it."""
    async with ActorSystem(url) as system:
        old = await system.spawn(Pricing, "eu")
        await system.tell(PricingV2.discount, 10)
        await system.tell_json("pricing", "restock", ["a", "many"])
        assert await system.proxy(Pricing).where() == "eu"  # it serves on, after both
        unknown, invalid = await system.dead_letters(Pricing)
        assert (unknown.reason, unknown.kind, unknown.method) == ("rejected", "tell", "discount")
        assert unknown.detail == "unknown_method: Pricing has no endpoint method 'discount'"
        assert (invalid.reason, invalid.method, invalid.args) == (
            "rejected", "restock", {"sku": "a", "qty": "many"}
        )  # fmt: skip
        assert invalid.detail.startswith("invalid_arguments: ")
        assert invalid.detail.endswith("qty: expected int, got str")
        assert unknown.attempts == invalid.attempts == 1

        await system.stop(old)
        await system.spawn(PricingNext)  # the newer provider is deployed: replay what fits it
        assert await system.replay(unknown)
        given = system.proxy(PricingNext).discounts_given
        assert await eventually(given, lambda d: d != []) == [10]
        assert [letter.id for letter in await system.dead_letters(Pricing)] == [invalid.id]


async def test_a_tell_whose_handler_raises_is_kept_in_the_dead_letters(url: str) -> None:
    """Nobody waits to hear that a tell's handler raised: the tell is moved aside with the
    exception's type and message, and replayed once what made it raise is mended."""
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        await system.tell(Pricing.crash, "boom")
        await system.tell(Pricing.reserve, "a", 5)  # OutOfStock, of the interface: none yet
        assert await system.proxy(Pricing).where() == "eu"  # it serves on, after both
        crashed, short = await system.dead_letters(Pricing)
        assert (crashed.reason, crashed.kind, crashed.method, crashed.args) == (
            "raised", "tell", "crash", {"message": "boom"}
        )  # fmt: skip
        assert crashed.detail == "builtins.ValueError: boom"
        assert (short.reason, short.method, short.args) == (
            "raised",
            "reserve",
            {"sku": "a", "qty": 5},
        )
        assert short.detail.startswith("OutOfStock: ") and crashed.attempts == short.attempts == 1

        await system.tell(Pricing.restock, "a", 8)  # mended: now there is stock
        assert await system.replay(short)
        assert await eventually(lambda: system.call(Pricing.stock_of, "a"), lambda n: n == 3)
        assert [letter.id for letter in await system.dead_letters(Pricing)] == [crashed.id]


async def test_an_event_whose_fields_do_not_fit_is_refused_at_publish(url: str) -> None:
    """Subscribers could not read it: refused at ``publish`` rather than dropped by each."""
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        fits = "the event PriceChanged does not fit its class: sku: expected str, got int"
        with pytest.raises(EncodeError, match=fits):
            await system.publish(PriceChanged(7, Decimal("1")))  # type: ignore[arg-type]
        await system.publish(PriceChanged("b", Decimal("9.99")))
        seen = await eventually(lambda: system.call(Pricing.events_seen), lambda s: bool(s))
        assert seen == ["price:b"]
