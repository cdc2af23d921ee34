"""JsonCodec behaviour: wire forms, strict decoding, error paths, unions, keys, registration."""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import (
    Annotated,
    Any,
    Generic,
    Literal,
    NamedTuple,
    NewType,
    Optional,
    TypedDict,
    TypeVar,
)
from uuid import UUID

import attrs
import pytest

from tactor.codecs import JsonCodec, TypeCodec
from tactor.errors import DecodeError, EncodeError, SchemaError

T = TypeVar("T")
UserId = NewType("UserId", int)
U1 = UUID("12345678-1234-5678-1234-567812345678")


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Item:
    name: str
    qty: int


@dataclasses.dataclass
class Address:
    city: str
    zip: str = ""


@dataclasses.dataclass
class Customer:
    name: str
    address: Address


@dataclasses.dataclass
class Order:
    customer: Customer
    items: list[Item]
    counts: dict[int, int] = dataclasses.field(default_factory=dict)
    note: str | None = None


@dataclasses.dataclass
class Node:
    value: int
    children: list[Node] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Box(Generic[T]):
    item: T


@dataclasses.dataclass
class Opts:
    verbose: bool = False


@dataclasses.dataclass
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("n must be positive")


@attrs.define
class Point:
    x: int
    y: float = 0.0


@dataclasses.dataclass
class Cat:
    name: str


@dataclasses.dataclass
class Dog:
    name: str  # the same fields as Cat: only the tag can tell them apart


@dataclasses.dataclass
class File:
    name: str


@dataclasses.dataclass
class Folder:
    name: str
    entries: list[Folder | File]


class Row(TypedDict):
    a: int
    b: str


class Pair(NamedTuple):
    left: int
    right: str


class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.cents == self.cents  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self.cents)


class Euro(Money):
    pass


@dataclasses.dataclass
class Wallet:
    cash: Money


def _money_from_wire(data: Any) -> Money:
    if not isinstance(data, str):
        raise TypeError(f"expected a string like '1.50', got {type(data).__name__}")
    return Money(round(Decimal(data) * 100))


MONEY = TypeCodec(Money, lambda m: f"{m.cents / 100:.2f}", _money_from_wire, {"type": "string"})


@pytest.fixture
def codec() -> JsonCodec:
    return JsonCodec()


MISSING = "required field missing"


def errors_of(codec: JsonCodec, data: Any, tp: Any) -> tuple[str, ...]:
    with pytest.raises(DecodeError) as info:
        codec.from_wire(data, tp)
    return info.value.errors


UTC2 = timezone(timedelta(hours=2))
WIRE_FORMS: list[tuple[Any, Any, Any]] = [
    ("x", str, "x"),
    (5, int, 5),
    (2.5, float, 2.5),
    (True, bool, True),
    (None, None, None),
    (Decimal("1.50"), Decimal, "1.50"),
    (b"\x00\xff", bytes, "AP8="),
    (datetime(2024, 5, 1, 12, 30, tzinfo=UTC2), datetime, "2024-05-01T12:30:00+02:00"),
    (datetime(2024, 5, 1, 12, 30, 0, 5), datetime, "2024-05-01T12:30:00.000005"),
    (date(2024, 5, 1), date, "2024-05-01"),
    (time(8, 15, tzinfo=UTC2), time, "08:15:00+02:00"),
    (timedelta(days=1, microseconds=1), timedelta, 86400.000001),
    (U1, UUID, str(U1)),
    (Color.RED, Color, "red"),
    (Level.HIGH, Level, 2),
    ([1, 2], list[int], [1, 2]),
    ((1, 2, 3), tuple[int, ...], [1, 2, 3]),
    ((1, "a"), tuple[int, str], [1, "a"]),
    (frozenset({"a"}), frozenset[str], ["a"]),
    ({3}, set[int], [3]),
    ([1, 2], Sequence[int], [1, 2]),
    ({"a": 1}, Mapping[str, int], {"a": 1}),
    ({4}, AbstractSet[int], [4]),
    ({1: "a", -2: "b"}, dict[int, str], {"1": "a", "-2": "b"}),
    ({U1: 1}, dict[UUID, int], {str(U1): 1}),
    ({Color.GREEN: 1}, dict[Color, int], {"green": 1}),
    ({Level.LOW: "x"}, dict[Level, str], {"1": "x"}),
    ({"b": 1, 2: 2}, dict[Literal["b", 2], int], {"b": 1, "2": 2}),
    ({UserId(7): "x"}, dict[UserId, str], {"7": "x"}),
    ("b", Literal["a", "b"], "b"),
    (UserId(3), UserId, 3),
    (4, Annotated[int, "meta"], 4),
    (None, Optional[int], None),  # noqa: UP045 - the spelling is under test
    (7, int | None, 7),
    ("s", int | str, "s"),
    (Item("a", 1), Item, {"name": "a", "qty": 1}),
    (Point(1, 2.5), Point, {"x": 1, "y": 2.5}),
    (Box(Item("b", 2)), Box[Item], {"item": {"name": "b", "qty": 2}}),
    (Node(1, [Node(2)]), Node, {"value": 1, "children": [{"value": 2, "children": []}]}),
    (Box(Box(frozenset({"a"}))), Box[Box[frozenset[str]]], {"item": {"item": ["a"]}}),
    (
        Folder("f", [File("a"), Folder("g", [])]),
        Folder,
        {
            "name": "f",
            "entries": [
                {"$type": "File", "name": "a"},
                {"$type": "Folder", "name": "g", "entries": []},
            ],
        },
    ),
    ({"a": 1, "b": "x"}, Row, {"a": 1, "b": "x"}),
    (Pair(1, "x"), Pair, [1, "x"]),
    (Cat("c"), Cat | None, {"name": "c"}),
    (
        [Cat("c"), Dog("d")],
        list[Cat | Dog],
        [{"$type": "Cat", "name": "c"}, {"$type": "Dog", "name": "d"}],
    ),
]


@pytest.mark.parametrize(("value", "tp", "wire"), WIRE_FORMS)
def test_wire_form_and_round_trip(codec: JsonCodec, value: Any, tp: Any, wire: Any) -> None:
    assert codec.to_wire(value, tp) == wire
    back = codec.decode(codec.encode(value, tp), tp)
    assert back == value
    assert type(back) is type(value)


def test_nested_dataclasses_round_trip(codec: JsonCodec) -> None:
    order = Order(Customer("ann", Address("Oslo")), [Item("a", 1)], {1: 2, 30: 4}, "rush")
    assert codec.decode(codec.encode(order, Order), Order) == order


def test_missing_defaults_are_filled_and_extra_keys_ignored(codec: JsonCodec) -> None:
    data = {"customer": {"name": "b", "address": {"city": "Rome"}}, "items": [], "new": 1}
    assert codec.from_wire(data, Order) == Order(Customer("b", Address("Rome")), [])


@pytest.mark.parametrize(
    ("data", "tp", "problem"),
    [
        ("1", int, "expected int, got str"),
        (True, int, "expected int, got bool"),
        (2.5, int, "expected int, got float"),
        (None, int, "expected int, got None"),
        (True, float, "expected float, got bool"),
        ("1.5", float, "expected float, got str"),
        (1, str, "expected str, got int"),
        (1, bool, "expected bool, got int"),
        ("true", bool, "expected bool, got str"),
        (0, None, "expected None, got int"),
        (1.5, Decimal, "expected Decimal, got float"),
        ("abc", Decimal, "invalid Decimal 'abc'"),
        ("NaN", Decimal, "invalid Decimal 'NaN'"),
        (" 1", Decimal, "invalid Decimal ' 1'"),
        ("1_000", Decimal, "invalid Decimal '1_000'"),
        ("not base64!", bytes, "invalid bytes (base64) 'not base64!'"),
        ("2024-05-01T10:00:00", date, "invalid date '2024-05-01T10:00:00'"),
        ("soon", datetime, "invalid datetime 'soon'"),
        (1714557600, datetime, "expected datetime, got int"),
        ("25:00", time, "invalid time '25:00'"),
        ("xyz", UUID, "invalid UUID 'xyz'"),
        ("60", timedelta, "expected timedelta (seconds), got str"),
        ("blue", Color, "expected Color (one of 'red', 'green'), got 'blue'"),
        (True, Level, "expected Level (one of 1, 2), got True"),
        (True, Literal[1, 2], "expected Literal (one of 1, 2), got True"),
        ("abc", list[str], "expected list[str], got str"),
        ({"a": 1}, list[int], "expected list[int], got dict"),
        ([1, "a", 3], tuple[int, str], "expected 2 items, got 3"),
        ([1], dict[str, int], "expected dict[str, int], got list"),
        ([], Opts, "expected Opts, got list"),
        (True, int | str, "expected int | str, got bool"),
        ([1], int | None, "expected int | None, got list"),
    ],
)
def test_decoding_is_strict(codec: JsonCodec, data: Any, tp: Any, problem: str) -> None:
    assert errors_of(codec, data, tp) == (f"$: {problem}",)


def test_float_accepts_json_ints_as_floats(codec: JsonCodec) -> None:
    value = codec.from_wire(3, float)
    assert value == 3.0
    assert type(value) is float


def test_decimal_accepts_json_ints(codec: JsonCodec) -> None:
    assert codec.from_wire(12, Decimal) == Decimal(12)


def test_error_paths_name_every_problem(codec: JsonCodec) -> None:
    data = {
        "customer": {"name": "c", "address": {"city": 5}},
        "items": [{"name": "a", "qty": "2"}, {"name": "b"}],
        "counts": {"x": 1, "2": "y"},
    }
    with pytest.raises(DecodeError, match=r"^cannot decode Order: ") as info:
        codec.from_wire(data, Order)
    assert info.value.errors == (
        "customer.address.city: expected str, got int",
        "items[0].qty: expected int, got str",
        "items[1].qty: required field missing",
        "counts[x]: expected int key",
        "counts[2]: expected int, got str",
    )


@pytest.mark.parametrize(
    ("data", "tp", "errors"),
    [
        ([1, "b"], list[int], ("$[1]: expected int, got str",)),
        ({"pair": 1}, dict[str, tuple[int, str]], ("$[pair]: expected tuple[int, str], got int",)),
        ([[1, "x"]], list[tuple[int, int]], ("$[0][1]: expected int, got str",)),
        (
            {"01": 1, " 2": 2},
            dict[int, int],
            ("$[01]: expected int key", "$[ 2]: expected int key"),
        ),
        ({"pink": 1}, dict[Color, int], ("$[pink]: expected Color key",)),
        ({"nope": 1}, dict[UUID, int], ("$[nope]: expected UUID key",)),
        ({"item": {}}, Box[Item], ("item.name: required field missing", "item.qty: " + MISSING)),
        ([{"n": 0}], list[Positive], ("$[0]: invalid Positive: ValueError: n must be positive",)),
        (
            {"children": [{"value": "x"}]},
            Node,
            ("value: required field missing", "children[0].value: expected int, got str"),
        ),
    ],
)
def test_error_paths_for_containers(
    codec: JsonCodec, data: Any, tp: Any, errors: tuple[str, ...]
) -> None:
    assert errors_of(codec, data, tp) == errors


def test_union_members_are_tagged_and_decoded_by_tag(codec: JsonCodec) -> None:
    wire = [{"$type": "Dog", "name": "rex"}, {"$type": "Cat", "name": "tom"}]
    pets = codec.from_wire(wire, list[Cat | Dog])
    assert pets == [Dog("rex"), Cat("tom")]
    assert [type(p) for p in pets] == [Dog, Cat]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"name": "x"}, "$: missing $type: expected one of 'Cat', 'Dog'"),
        ({"$type": "Cow", "name": "x"}, "$: unknown $type 'Cow': expected one of 'Cat', 'Dog'"),
        ({"$type": "Dog", "name": 5}, "name: expected str, got int"),
        ("Cat", "$: expected Cat | Dog | None, got str"),
    ],
)
def test_tagged_union_errors(codec: JsonCodec, data: Any, error: str) -> None:
    assert errors_of(codec, data, Cat | Dog | None) == (error,)


def test_union_routes_by_json_type_and_prefers_specific_members(codec: JsonCodec) -> None:
    tp = int | float | str | Color | None
    decoded = [codec.from_wire(v, tp) for v in (1, 1.5, "red", "other", None)]
    assert decoded == [1, 1.5, Color.RED, "other", None]
    assert [type(v) for v in decoded] == [int, float, Color, str, type(None)]
    assert codec.from_wire("2024-05-01", date | datetime | str) == date(2024, 5, 1)
    assert codec.from_wire({"a": 1}, Item | dict[str, int]) == {"a": 1}


def test_union_of_one_record_and_a_map_needs_no_tag(codec: JsonCodec) -> None:
    tp = Item | dict[str, int]
    assert codec.to_wire(Item("a", 1), tp) == {"name": "a", "qty": 1}
    assert codec.from_wire({"name": "a", "qty": 1}, tp) == Item("a", 1)


MALFORMED = [b"", b"{", b"\xff\xfe", b"nul", b"NaN", b"[1,]", b'{"a":1}x', b'"\xc3(']


@pytest.mark.parametrize("payload", MALFORMED)
def test_malformed_bytes_are_decode_errors(codec: JsonCodec, payload: bytes) -> None:
    with pytest.raises(DecodeError, match=r"^malformed JSON"):
        codec.loads(payload)
    with pytest.raises(DecodeError, match=r"^malformed JSON"):
        codec.decode(payload, int)


@pytest.mark.parametrize(
    ("value", "tp", "message"),
    [
        (float("inf"), float, "cannot encode float: non-finite float inf"),
        ([1.0, float("nan")], list[float], "cannot encode list[float]: non-finite float nan"),
        (Decimal("NaN"), Decimal, "cannot encode Decimal: non-finite Decimal"),
        (timedelta(days=200_000), timedelta, "cannot encode timedelta: timedelta 200000 days"),
        ([1], date | None, "cannot encode date | None: a list value does not fit date | None"),
        (1, Any, "cannot encode Any: Any is not supported"),
    ],
)
def test_encode_errors_name_the_type(codec: JsonCodec, value: Any, tp: Any, message: str) -> None:
    with pytest.raises(EncodeError, match=f"^{re.escape(message)}"):
        codec.to_wire(value, tp)


@pytest.mark.parametrize("data", [2**64, -(2**63) - 1, "lone \ud800 surrogate", {1: 2}, {1, 2}])
def test_dumps_refuses_what_json_cannot_hold(codec: JsonCodec, data: Any) -> None:
    with pytest.raises(EncodeError, match=r"^cannot serialise to JSON"):
        codec.dumps(data)


def test_64_bit_ints_survive(codec: JsonCodec) -> None:
    for n in (2**64 - 1, -(2**63)):
        assert codec.decode(codec.encode(n, int), int) == n


def test_unsupported_type_in_from_wire_is_a_schema_error(codec: JsonCodec) -> None:
    with pytest.raises(SchemaError, match="Any is not supported"):
        codec.from_wire(1, list[Any])


def test_deep_nesting_is_an_error_not_a_crash(codec: JsonCodec) -> None:
    data: dict[str, Any] = {"value": 0}
    for _ in range(5_000):
        data = {"value": 1, "children": [data]}
    assert errors_of(codec, data, Node) == ("$: nested too deeply",)
    node = Node(0)
    for _ in range(5_000):
        node = Node(1, [node])
    with pytest.raises(EncodeError, match="nested too deeply"):
        codec.to_wire(node, Node)


def test_error_list_is_bounded(codec: JsonCodec) -> None:
    errors = errors_of(codec, ["x"] * 1000, list[int])
    assert errors[:2] == ("$[0]: expected int, got str", "$[1]: expected int, got str")
    assert len(errors) == 51
    assert errors[-1] == "$: and 950 more problems"


def test_registered_type_round_trips_with_subclasses(codec: JsonCodec) -> None:
    codec.register(MONEY)
    assert codec.to_wire(Wallet(Money(150)), Wallet) == {"cash": "1.50"}
    assert codec.from_wire({"cash": "2.25"}, Wallet) == Wallet(Money(225))
    assert codec.to_wire(Euro(5), Euro) == "0.05"
    assert codec.knows(Money)
    assert codec.knows(Euro)
    assert not codec.knows(int)


def test_user_from_wire_errors_become_path_errors(codec: JsonCodec) -> None:
    codec.register(MONEY)
    assert errors_of(codec, {"cash": 3}, Wallet) == (
        "cash: invalid Money: expected a string like '1.50', got int",
    )


def test_union_with_a_registered_type_routes_by_its_schema(codec: JsonCodec) -> None:
    codec.register(MONEY)
    assert codec.from_wire("1.50", Money | int) == Money(150)
    assert codec.from_wire(7, Money | int) == 7


def test_registration_is_per_codec_and_copies_are_independent() -> None:
    original = JsonCodec()
    copy = original.copy()
    copy.register(MONEY)
    assert copy.knows(Money)
    assert not original.knows(Money)
    with pytest.raises(SchemaError, match="no codec for class Money"):
        original.json_schema(Wallet)
    with pytest.raises(EncodeError, match="no codec for class Money"):
        original.to_wire(Money(1), Money)
    cents = TypeCodec(Money, lambda m: m.cents, lambda n: Money(n), {"type": "integer"})
    second = copy.copy()
    second.register(cents)
    assert second.to_wire(Money(150), Money) == 150
    assert copy.to_wire(Money(150), Money) == "1.50"


def test_registering_replaces_hooks_generated_earlier(codec: JsonCodec) -> None:
    codec.register(MONEY)
    assert codec.to_wire(Wallet(Money(1)), Wallet) == {"cash": "0.01"}
    codec.register(TypeCodec(Money, lambda m: m.cents, lambda n: Money(n)))
    assert codec.to_wire(Wallet(Money(1)), Wallet) == {"cash": 1}
    assert codec.from_wire({"cash": 1}, Wallet) == Wallet(Money(1))


def test_registered_codec_beats_the_record_rule(codec: JsonCodec) -> None:
    codec.register(TypeCodec(Item, lambda i: f"{i.name}x{i.qty}", lambda s: Item(s[0], int(s[2:]))))
    assert codec.to_wire([Item("a", 3)], list[Item]) == ["ax3"]
    assert codec.from_wire(["b", "cx4"][1:], list[Item]) == [Item("c", 4)]


def test_register_rejects_non_classes(codec: JsonCodec) -> None:
    with pytest.raises(SchemaError, match="must be a class"):
        codec.register(TypeCodec(list[int], str, int))  # type: ignore[arg-type]
