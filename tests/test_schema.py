"""Schemas from type hints: checked at class definition, exported as JSON Schema, user codecs."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, NewType

import attrs
import pytest

from tactor import Actor, ActorSystem, SchemaError, TypeCodec, json_schema
from tests.model import Item, Pricing

UserId = NewType("UserId", str)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.define
class Point:
    x: float
    y: float


@dataclass
class Everything:
    when: dt.datetime
    day: dt.date
    ident: uuid.UUID
    amount: Decimal
    blob: bytes
    color: Color
    tags: set[str]
    frozen: frozenset[int]
    pair: tuple[int, str]
    many: tuple[int, ...]
    scores: dict[str, float]
    mode: Literal["a", "b"]
    user: UserId
    point: Point
    maybe: int | None = None


class Kitchen(Actor, name="kitchen"):
    async def roundtrip(self, value: Everything) -> Everything:
        return value

    async def pick(self, value: int | str | None, *, flag: bool = False) -> str:
        return f"{type(value).__name__}:{flag}"

    async def points(self, p: list[Point], by: dict[UserId, Color]) -> tuple[Point, ...]:
        return tuple(p)


def test_missing_hint_names_class_method_and_parameter() -> None:
    with pytest.raises(SchemaError, match=r"Bad\.quote\(items\): parameter has no type hint"):

        class Bad(Actor):
            async def quote(self, items) -> int:  # type: ignore[no-untyped-def]
                return 0


def test_missing_return_hint() -> None:
    with pytest.raises(SchemaError, match=r"Bad\.go: no return type hint"):

        class Bad(Actor):
            async def go(self, x: int):  # type: ignore[no-untyped-def]
                return x


def test_unsupported_type_fails_at_definition() -> None:
    with pytest.raises(SchemaError, match=r"Bad\.go\(x\)"):

        class Bad(Actor):
            async def go(self, x: Any) -> None: ...

    with pytest.raises(SchemaError, match=r"Bad2\.go -> return"):

        class Bad2(Actor):
            async def go(self) -> list: ...  # type: ignore[type-arg]


def test_star_args_and_sync_public_methods_fail() -> None:
    with pytest.raises(SchemaError, match=r"\*args"):

        class Bad(Actor):
            async def go(self, *names: str) -> None: ...

    with pytest.raises(SchemaError, match=r"\*\*kwargs"):

        class Bad2(Actor):
            async def go(self, **names: str) -> None: ...

    with pytest.raises(SchemaError, match=r"Bad3\.helper: public methods must be 'async def'"):

        class Bad3(Actor):
            def helper(self) -> int:
                return 1

    class Fine(Actor):
        def _helper(self) -> int:
            return 1

        async def go(self) -> int:
            return self._helper()


def test_endpoint_names_and_inheritance() -> None:
    class Impl(Pricing):
        async def extra(self) -> int:
            return 1

    assert Impl.__tactor_schema__.endpoint == "pricing"
    assert "extra" in Impl.__tactor_schema__.methods
    assert "quote" in Impl.__tactor_schema__.methods
    assert Kitchen.__tactor_schema__.endpoint == "kitchen"

    class Plain(Actor):
        async def go(self) -> None: ...

    assert Plain.__tactor_schema__.endpoint == "Plain"
    with pytest.raises(SchemaError, match="endpoint name"):

        class Spaced(Actor, name="has space"):
            pass


async def test_every_supported_type_crosses_the_wire(url: str) -> None:
    value = Everything(
        when=dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC),
        day=dt.date(2026, 11, 23),
        ident=uuid.uuid4(),
        amount=Decimal("12.3400"),
        blob=b"\x00\xffbytes",
        color=Color.BLUE,
        tags={"x", "y"},
        frozen=frozenset({1, 2}),
        pair=(1, "one"),
        many=(1, 2, 3),
        scores={"a": 1.5},
        mode="b",
        user=UserId("u1"),
        point=Point(1.0, 2.5),
        maybe=7,
    )
    async with ActorSystem(url) as system:
        await system.spawn(Kitchen)
        kitchen = system.proxy(Kitchen)
        assert await kitchen.roundtrip(value) == value
        assert await kitchen.pick(1) == "int:False"
        assert await kitchen.pick("1", flag=True) == "str:True"
        assert await kitchen.pick(None) == "NoneType:False"
        pts = await kitchen.points([Point(1, 2)], {UserId("u"): Color.RED})
        assert pts == (Point(1.0, 2.0),)


def test_json_schema_export() -> None:
    exported = json_schema(Pricing)
    assert exported["endpoint"] == "pricing"
    quote = exported["methods"]["quote"]
    params = quote["params"]
    assert params["type"] == "object"
    assert set(params["properties"]) == {"items", "coupon"}
    assert params.get("required") == ["items"]
    assert "string" in quote["result"]["type"]  # Decimal travels as a string
    assert "on_price" not in exported["methods"]


class Money:
    """A plain class: tactor has no rule for it, so it needs a codec on the system."""

    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and other.cents == self.cents

    def __hash__(self) -> int:
        return hash(self.cents)


class Till(Actor, name="till"):
    async def add(self, a: Money, b: Money) -> Money:
        return Money(a.cents + b.cents)


MONEY = TypeCodec(
    Money,
    to_wire=lambda m: f"{m.cents / 100:.2f}",
    from_wire=lambda s: Money(round(float(s) * 100)),
    schema={"type": "string"},
)


async def test_user_codecs_are_registered_per_system(url: str) -> None:
    async with ActorSystem(url, codecs=[MONEY]) as system:
        await system.spawn(Till)
        assert await system.proxy(Till).add(Money(150), Money(275)) == Money(425)
    async with ActorSystem(url) as bare:
        with pytest.raises(SchemaError, match="Money, which has no codec"):
            await bare.spawn(Till)


def test_item_is_plain_dataclass() -> None:
    assert Item("a", 1) == Item(sku="a", qty=1)
