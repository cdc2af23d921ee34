"""Property tests: every supported type family survives to_wire -> dumps -> loads -> from_wire."""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, NamedTuple, NewType, TypedDict, TypeVar
from uuid import UUID

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tactor.codecs import JsonCodec
from tactor.codecs.jsonschema import DECIMAL_PATTERN, INT_KEY_PATTERN
from tactor.errors import DecodeError, EncodeError

T = TypeVar("T")
UserId = NewType("UserId", int)
CODEC = JsonCodec()
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mixed(enum.Enum):
    ONE = 1
    HALF = 0.5
    NAME = "name"


@dataclasses.dataclass
class Line:
    sku: str
    qty: int
    price: Decimal


@dataclasses.dataclass
class Order:
    id: UUID
    lines: list[Line]
    tags: dict[str, int]
    at: datetime
    color: Color
    total: Decimal
    note: str | None = None
    ratio: float = 1.0


@attrs.define
class Point:
    x: int
    y: float = 0.0


@dataclasses.dataclass
class Box(Generic[T]):
    item: T


@dataclasses.dataclass
class Tree:
    label: str
    children: list[Tree] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Circle:
    radius: float


@dataclasses.dataclass
class Square:
    side: float


class Row(TypedDict):
    a: int
    b: list[str]


class Pair(NamedTuple):
    left: int
    right: UUID


INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what orjson can write
FLOATS = st.floats(allow_nan=False, allow_infinity=False)  # non-finite: see below
DECIMALS = st.decimals(allow_nan=False, allow_infinity=False)
OFFSETS = st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
DATETIMES = st.datetimes(timezones=st.none() | OFFSETS)
TIMES = st.times(timezones=st.none() | OFFSETS)
LIMIT = timedelta(seconds=2**33 - 1)
TIMEDELTAS = st.timedeltas(min_value=-LIMIT, max_value=LIMIT)
LINES = st.builds(Line, st.text(), INT64, DECIMALS)
ORDERS = st.builds(
    Order,
    st.uuids(),
    st.lists(LINES, max_size=3),
    st.dictionaries(st.text(), INT64, max_size=3),
    DATETIMES,
    st.sampled_from(Color),
    DECIMALS,
    st.none() | st.text(),
    FLOATS,
)
TREES = st.recursive(
    st.builds(Tree, st.text(max_size=3)),
    lambda kids: st.builds(Tree, st.text(max_size=3), st.lists(kids, max_size=3)),
    max_leaves=10,
)
SHAPES = st.builds(Circle, FLOATS) | st.builds(Square, FLOATS)

FAMILIES: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (int, INT64),
    (float, FLOATS),
    (str, st.text()),
    (bool, st.booleans()),
    (None, st.none()),
    (Decimal, DECIMALS),
    (bytes, st.binary()),
    (datetime, DATETIMES),
    (date, st.dates()),
    (time, TIMES),
    (timedelta, TIMEDELTAS),
    (UUID, st.uuids()),
    (Color, st.sampled_from(Color)),
    (Level, st.sampled_from(Level)),
    (Mixed, st.sampled_from(Mixed)),
    (Literal["a", 2, True, None], st.sampled_from(["a", 2, True, None])),
    (UserId, INT64.map(UserId)),
    (Annotated[str, "meta"], st.text()),
    (list[int], st.lists(INT64)),
    (tuple[str, ...], st.lists(st.text()).map(tuple)),
    (tuple[int, str, bool], st.tuples(INT64, st.text(), st.booleans())),
    (set[int], st.sets(INT64)),
    (frozenset[str], st.frozensets(st.text())),
    (Sequence[float], st.lists(FLOATS)),
    (Mapping[str, date], st.dictionaries(st.text(), st.dates())),
    (AbstractSet[UUID], st.sets(st.uuids())),
    (dict[int, str], st.dictionaries(INT64, st.text())),
    (dict[UUID, Decimal], st.dictionaries(st.uuids(), DECIMALS)),
    (dict[Color, int], st.dictionaries(st.sampled_from(Color), INT64)),
    (dict[Level, bool], st.dictionaries(st.sampled_from(Level), st.booleans())),
    (dict[Literal["x", 7], int], st.dictionaries(st.sampled_from(["x", 7]), INT64)),
    (dict[UserId, str], st.dictionaries(INT64.map(UserId), st.text())),
    (int | None, st.none() | INT64),
    (
        bool | int | float | str | None,
        st.one_of(st.none(), st.booleans(), INT64, FLOATS, st.text()),
    ),
    (Level | str, st.sampled_from(Level) | st.text()),
    (date | datetime, st.dates() | st.datetimes()),
    (list[int] | dict[str, int], st.lists(INT64) | st.dictionaries(st.text(), INT64)),
    (Order, ORDERS),
    (Point, st.builds(Point, INT64, FLOATS)),
    (Box[int], st.builds(Box, INT64)),
    (Box[list[Color]], st.builds(Box, st.lists(st.sampled_from(Color)))),
    (Tree, TREES),
    (list[Circle | Square], st.lists(SHAPES)),
    (Circle | Square | None, st.none() | SHAPES),
    (Line | None, st.none() | LINES),
    (Row, st.fixed_dictionaries({"a": INT64, "b": st.lists(st.text())})),
    (Pair, st.builds(Pair, INT64, st.uuids())),
]


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 == True would hide bugs)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        keys = {(type(k), k) for k in a} == {(type(k), k) for k in b}
        return keys and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, (set, frozenset)):
        return {(type(x), x) for x in a} == {(type(x), x) for x in b}
    if dataclasses.is_dataclass(a) or attrs.has(type(a)):
        fields = attrs.fields(type(a)) if attrs.has(type(a)) else dataclasses.fields(a)
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in fields)
    if isinstance(a, (datetime, time)):
        return bool(a == b) and a.utcoffset() == b.utcoffset()  # the offset is kept
    return bool(a == b)


def round_trip(value: Any, tp: Any) -> Any:
    return CODEC.from_wire(CODEC.loads(CODEC.dumps(CODEC.to_wire(value, tp))), tp)


def attempt(data: Any, tp: Any) -> tuple[Any, tuple[str, ...] | None]:
    """from_wire's result, or the DecodeError's errors."""
    try:
        return CODEC.from_wire(data, tp), None
    except DecodeError as exc:
        return None, exc.errors


def test_same_catches_type_confusion() -> None:
    assert not same([1], [1.0])
    assert not same({"a": True}, {"a": 1})
    assert not same(Level.LOW, 1)
    assert same([Box(1)], [Box(1)])


@pytest.mark.parametrize(("tp", "values"), FAMILIES, ids=[str(tp) for tp, _ in FAMILIES])
@PROPERTY
@given(data=st.data())
def test_family_round_trips(tp: Any, values: st.SearchStrategy[Any], data: st.DataObject) -> None:
    value = data.draw(values)
    assert same(round_trip(value, tp), value)


LEAVES = [(int, INT64), (str, st.text()), (float, FLOATS), (Decimal, DECIMALS)]
LEAVES += [(UUID, st.uuids()), (Color, st.sampled_from(Color)), (date, st.dates())]
KEYS = [(str, st.text()), (int, INT64), (UUID, st.uuids()), (Level, st.sampled_from(Level))]
Shape = tuple[Any, st.SearchStrategy[Any]]


def _nest(kids: st.SearchStrategy[Shape]) -> st.SearchStrategy[Shape]:
    def pair(p: tuple[Shape, Shape]) -> Shape:
        return tuple[p[0][0], p[1][0]], st.tuples(p[0][1], p[1][1])

    def mapping(p: tuple[Shape, Shape]) -> Shape:
        return dict[p[0][0], p[1][0]], st.dictionaries(p[0][1], p[1][1], max_size=3)

    return st.one_of(
        kids.map(lambda k: (list[k[0]], st.lists(k[1], max_size=3))),
        kids.map(lambda k: (tuple[k[0], ...], st.lists(k[1], max_size=3).map(tuple))),
        kids.map(lambda k: (k[0] | None, st.none() | k[1])),
        kids.map(lambda k: (Box[k[0]], k[1].map(Box))),
        st.tuples(kids, kids).map(pair),
        st.tuples(st.sampled_from(KEYS), kids).map(mapping),
        st.sampled_from(KEYS).map(lambda k: (frozenset[k[0]], st.frozensets(k[1], max_size=3))),
    )


NESTED = st.recursive(st.sampled_from(LEAVES), _nest, max_leaves=5)


@PROPERTY
@given(data=st.data())
def test_randomly_nested_types_round_trip(data: st.DataObject) -> None:
    tp, values = data.draw(NESTED)
    value = data.draw(values)
    assert same(round_trip(value, tp), value)


JSON = st.recursive(
    st.none() | st.booleans() | INT64 | FLOATS | st.text(),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(), kids, max_size=3),
    max_leaves=8,
)
STRICT = [
    (int, lambda v: type(v) is int),
    (float, lambda v: type(v) in (int, float)),
    (str, lambda v: type(v) is str),
    (bool, lambda v: type(v) is bool),
    (None, lambda v: v is None),
    (list[int], lambda v: type(v) is list and all(type(x) is int for x in v)),
]


@PROPERTY
@given(value=JSON)
def test_leaves_accept_exactly_their_json_type(value: Any) -> None:
    for tp, fits in STRICT:
        decoded, errors = attempt(value, tp)
        assert (errors is None) == fits(value), (tp, value, errors)
        if errors is None:
            # A float takes the nearest double of an int (2**53 + 1 has none of its own).
            assert decoded == (float(value) if tp is float else value)
            assert type(decoded) is (float if tp is float else type(value))


FIELDS = [f.name for f in dataclasses.fields(Order)]


@PROPERTY
@given(order=ORDERS, field=st.sampled_from(FIELDS), junk=JSON)
def test_errors_point_at_the_broken_field(order: Order, field: str, junk: Any) -> None:
    wire = CODEC.to_wire(order, Order)
    wire[field] = junk
    _, errors = attempt(wire, Order)
    if errors is not None:
        assert errors
        assert all(e.startswith((f"{field}:", f"{field}.", f"{field}[")) for e in errors), errors


@PROPERTY
@given(text=st.text(max_size=12) | st.from_regex(DECIMAL_PATTERN))
def test_decimal_strings_are_read_exactly_when_they_match_the_schema_pattern(text: str) -> None:
    decoded, errors = attempt(text, Decimal)
    matches = re.fullmatch(DECIMAL_PATTERN, text) is not None
    # Only an exponent too large for Python's Decimal may match and still fail.
    assert matches == (errors is None) or (matches and len(text) > 18)
    if errors is None:
        assert decoded == Decimal(text)


@PROPERTY
@given(key=st.text(max_size=6) | INT64.map(str))
def test_int_keys_are_read_exactly_when_canonical(key: str) -> None:
    canonical = re.fullmatch(INT_KEY_PATTERN, key) is not None
    decoded, errors = attempt({key: 0}, dict[int, int])
    if canonical:
        assert decoded == {int(key): 0}
    else:
        assert errors == (f"$[{key}]: expected int key",)


@PROPERTY
@given(
    before=st.lists(FLOATS, max_size=3),
    bad=st.sampled_from([math.inf, -math.inf, math.nan]),
    after=st.lists(FLOATS, max_size=3),
)
def test_non_finite_floats_are_refused_at_encode(
    before: list[float], bad: float, after: list[float]
) -> None:
    with pytest.raises(EncodeError, match=r"non-finite float"):
        CODEC.to_wire(Box([*before, bad, *after]), Box[list[float]])


@PROPERTY
@given(seconds=st.integers(2**33, 86_399_999_999_999))
def test_timedeltas_too_long_for_exact_float_seconds_are_refused(seconds: int) -> None:
    with pytest.raises(EncodeError, match="too long to send exactly"):
        CODEC.to_wire(timedelta(seconds=seconds), timedelta)
