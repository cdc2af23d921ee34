"""Every request gets exactly one reply: whatever a handler does, its caller hears at once."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal

import pytest

from tactor import (
    Actor,
    ActorSystem,
    DecodeError,
    EncodeError,
    RemoteError,
)
from tests.helpers import eventually

# Far longer than any answer takes: a test that waits this long has failed.
DEADLINE = 20.0


@dataclass
class Overdrawn(Exception):
    account: str
    amount: int


class Halt(BaseException):
    """Not an Exception: it ends the provider it escapes from, as it would end a program."""


class Teller(Actor, name="teller", errors=(Overdrawn,)):
    def __init__(self, value: object) -> None:
        self.value = value

    async def balance(self) -> int:
        return self.value  # type: ignore[return-value]  # deliberately wrong

    async def withdraw(self) -> None:
        raise Overdrawn("acct", 2**70)  # an interface error whose field JSON cannot hold

    async def complain(self) -> None:
        raise ValueError("bad \udc80 surrogate")  # a message that is not valid UTF-8

    async def give_up(self) -> None:
        raise asyncio.CancelledError  # raised by the handler, not a cancellation of it

    async def big(self) -> str:
        return "x" * 5_000

    async def halt(self) -> None:
        raise Halt("closing time")


@pytest.mark.parametrize(
    "value",
    [object(), Decimal("1.5"), [1, object()], 2**70],
    ids=["object", "decimal", "nested", "int70"],
)
async def test_a_result_that_cannot_be_sent_is_an_encode_error_at_once(
    url: str, value: object
) -> None:
    async with ActorSystem(url, timeout=DEADLINE) as system:
        ref = await system.spawn(Teller, value)
        started = time.monotonic()
        with pytest.raises(EncodeError) as caught:
            await system.proxy(Teller).balance()
        assert time.monotonic() - started < DEADLINE / 2
        message = str(caught.value)
        assert "Teller.balance" in message and "'-> int'" in message and ref.id in message
        # The provider goes on serving.
        assert await system.call(Teller.big) == "x" * 5_000


async def test_a_wrongly_typed_result_is_a_decode_error_naming_method_and_provider(
    url: str,
) -> None:
    async with ActorSystem(url, timeout=DEADLINE) as system:
        ref = await system.spawn(Teller, "seven")
        with pytest.raises(DecodeError, match=r"teller\.balance") as caught:
            await system.call(Teller.balance)
        assert ref.id in str(caught.value) and "expected int, got str" in str(caught.value)


async def test_an_error_whose_fields_cannot_be_sent_still_reaches_the_caller(url: str) -> None:
    async with ActorSystem(url, timeout=DEADLINE) as system:
        await system.spawn(Teller, 1)
        started = time.monotonic()
        with pytest.raises(RemoteError, match="Overdrawn") as caught:
            await system.call(Teller.withdraw)
        assert "acct" in str(caught.value) and "details not sent" in str(caught.value)
        with pytest.raises(RemoteError, match="ValueError") as caught:
            await system.call(Teller.complain)
        assert "surrogate" in str(caught.value)
        assert time.monotonic() - started < DEADLINE / 2


async def test_a_handler_raising_cancelled_error_is_an_error_not_a_dead_provider(
    url: str,
) -> None:
    async with ActorSystem(url, timeout=DEADLINE) as system:
        await system.spawn(Teller, 1)
        with pytest.raises(RemoteError, match="CancelledError"):
            await system.call(Teller.give_up)
        assert await system.call(Teller.balance) == 1  # the same provider still serves


async def test_broadcast_outcomes_carry_the_errors(url: str) -> None:
    async with ActorSystem(url, timeout=DEADLINE) as system:
        await system.spawn(Teller, object())
        await system.spawn(Teller, 2)
        started = time.monotonic()
        result = await system.broadcast(Teller.balance)
        assert time.monotonic() - started < DEADLINE / 2
        assert result.complete
        errors = [o.error for o in result.outcomes if o.error is not None]
        assert list(result) == [2] and len(errors) == 1 and isinstance(errors[0], EncodeError)


async def test_a_handler_raising_a_base_exception_is_answered_then_its_provider_stops(
    url: str,
) -> None:
    async with ActorSystem(url, timeout=DEADLINE) as system:
        await system.spawn(Teller, 1)
        started = time.monotonic()
        with pytest.raises(RemoteError, match=r"Halt: closing time in teller\.halt"):
            await system.call(Teller.halt)
        assert time.monotonic() - started < DEADLINE / 2  # answered, not left to its deadline
        await eventually(lambda: system.providers(Teller), lambda p: p == [])  # and it stopped
        halt = (await system.stats()).method("teller", "halt")
        assert halt is not None and dict(halt.handler_failed) == {f"{__name__}.Halt": 1}
        await system.spawn(Teller, 2)
        assert await system.call(Teller.balance) == 2  # the endpoint serves on
