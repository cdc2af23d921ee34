"""The generated dataclass hooks against cattrs' generated code with the same field hooks.

White-box: reaches into the codec's converters, because the point is that the
generated code (tactor/codecs/codegen.py) does what cattrs' code would, on
every input, valid or not.
"""

from __future__ import annotations

import dataclasses
import enum
import linecache
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar
from uuid import UUID

import pytest
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from hypothesis import given
from hypothesis import strategies as st

from tactor.codecs import JsonCodec, TypeCodec
from tactor.codecs.jsonschema import record_fields, type_name
from tactor.codecs.records import object_in
from tests.test_codec_roundtrip import (
    DATETIMES,
    DECIMALS,
    FLOATS,
    INT64,
    JSON,
    LINES,
    PROPERTY,
    Color,
    Level,
    Line,
    Point,
    UserId,
    same,
)

T = TypeVar("T")


class Cents:
    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cents) and other.cents == self.cents

    __hash__ = None  # type: ignore[assignment]


def _cents(data: Any) -> Cents:
    if type(data) is not int:
        raise ValueError("cents must be an int")
    return Cents(data)


CODEC = JsonCodec([TypeCodec(Cents, lambda c: c.cents, _cents, {"type": "integer"})])


class Size(enum.Enum):
    S = "s"
    M = 2


@dataclasses.dataclass
class Inner:
    n: int
    note: str | None = None
    prices: list[Decimal] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Wide:
    inner: Inner
    maybe: Inner | None
    many: list[Inner | None]
    table: dict[str, list[Inner]]
    by_level: dict[Level, Decimal]
    by_id: dict[UUID, int]
    ints: frozenset[int]
    pair: tuple[int, str]
    rest: tuple[str, ...]
    when: datetime
    day: date | None
    size: Size
    lit: Literal["a", 7, None]
    uid: UserId
    tagged: Annotated[int, "meta"]
    cents: Cents | None
    point: Point | None
    flag: bool = False
    ratio: float = dataclasses.field(default=1.0, kw_only=True)
    _hidden: str = ""
    later: int = dataclasses.field(default=0, init=False)


@dataclasses.dataclass(kw_only=True)
class KwOnly:
    first: int
    second: Inner | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Frozen:
    amount: Decimal
    color: Color


@dataclasses.dataclass
class Checked:
    qty: int

    def __post_init__(self) -> None:
        if self.qty < 0:
            raise ValueError("qty must not be negative")


@dataclasses.dataclass
class Node:
    label: str
    kids: list[Node] = dataclasses.field(default_factory=list)
    next: Node | None = None


@dataclasses.dataclass
class Box(Generic[T]):
    item: T
    items: list[T] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Renamed:
    value: Annotated[int, override(rename="v")]  # a cattrs override: left to cattrs


@dataclasses.dataclass
class Nothing:
    pass


def _deep(depth: int) -> Any:
    tp: Any = int
    for _ in range(depth):
        tp = list[tp | None]
    return tp


@dataclasses.dataclass
class Deep:
    value: _deep(16)  # deeper than one function may nest blocks


INNERS = st.builds(Inner, INT64, st.none() | st.text(max_size=3), st.lists(DECIMALS, max_size=2))
WIDES = st.builds(
    Wide,
    INNERS,
    st.none() | INNERS,
    st.lists(st.none() | INNERS, max_size=2),
    st.dictionaries(st.text(max_size=2), st.lists(INNERS, max_size=2), max_size=2),
    st.dictionaries(st.sampled_from(Level), DECIMALS, max_size=2),
    st.dictionaries(st.uuids(), INT64, max_size=2),
    st.frozensets(INT64, max_size=2),
    st.tuples(INT64, st.text(max_size=2)),
    st.lists(st.text(max_size=2), max_size=2).map(tuple),
    DATETIMES,
    st.none() | st.dates(),
    st.sampled_from(Size),
    st.sampled_from(["a", 7, None]),
    INT64.map(UserId),
    INT64,
    st.none() | INT64.map(Cents),
    st.none() | st.builds(Point, INT64, FLOATS),
    st.booleans(),
    ratio=FLOATS,
    _hidden=st.text(max_size=2),
)
NODES = st.recursive(
    st.builds(Node, st.text(max_size=2)),
    lambda kids: st.builds(Node, st.text(max_size=2), st.lists(kids, max_size=2), st.none() | kids),
    max_leaves=6,
)


def _nested(depth: int) -> st.SearchStrategy[Any]:
    values: st.SearchStrategy[Any] = INT64
    for _ in range(depth):
        values = st.lists(st.none() | values, max_size=2)
    return values


RECORDS: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (Inner, INNERS),
    (Wide, WIDES),
    (KwOnly, st.builds(KwOnly, first=INT64, second=st.none() | INNERS)),
    (Frozen, st.builds(Frozen, DECIMALS, st.sampled_from(Color))),
    (Checked, st.builds(Checked, st.integers(0, 9))),
    (Node, NODES),
    (Box[Inner], st.builds(Box, INNERS, st.lists(INNERS, max_size=2))),
    (Box[Box[int]], st.builds(Box, st.builds(Box, INT64))),
    (Box[Line], st.builds(Box, LINES)),
    (Renamed, st.builds(Renamed, INT64)),
    (Nothing, st.just(Nothing())),
    (Deep, st.builds(Deep, _nested(16))),
]
IDS = [str(tp) for tp, _ in RECORDS]


def result(run: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", run(*args)
    except Exception as exc:
        return "error", (type(exc), str(exc))


def agree(ours: tuple[str, Any], theirs: tuple[str, Any]) -> bool:
    if ours[0] != theirs[0]:
        return False
    return ours[1] == theirs[1] if ours[0] == "error" else same(ours[1], theirs[1])


def mutated(draw: Any, data: Any) -> Any:
    """``data`` with one part replaced, dropped or added, anywhere in it."""
    if isinstance(data, dict) and data and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(data, key=repr)))
        data, how = dict(data), draw(st.integers(0, 2))
        if how == 0:
            del data[key]
        elif how == 1:
            data[key] = mutated(draw, data[key])
        else:
            data[draw(st.text(max_size=2))] = draw(JSON)
        return data
    if isinstance(data, list) and data and draw(st.booleans()):
        data = list(data)
        index = draw(st.integers(0, len(data) - 1))
        data[index] = mutated(draw, data[index])
        return data
    return draw(JSON)


@pytest.mark.parametrize(("tp", "values"), RECORDS, ids=IDS)
@PROPERTY
@given(data=st.data())
def test_unstructure_matches_cattrs_code(
    tp: Any, values: st.SearchStrategy[Any], data: st.DataObject
) -> None:
    value = data.draw(values)
    ours, theirs = CODEC._fast.get_unstructure_hook(tp), make_dict_unstructure_fn(tp, CODEC._fast)
    mine, cattrs = result(ours, value), result(theirs, value)
    assert agree(mine, cattrs), (mine, cattrs)
    if mine[0] == "ok":
        assert list(mine[1]) == list(cattrs[1])  # keys in the same order: the same bytes
    other = data.draw(st.builds(Inner, INT64) | st.builds(Checked, st.integers(0, 9)) | JSON)
    assert agree(result(ours, other), result(theirs, other))


@pytest.mark.parametrize(("tp", "values"), RECORDS, ids=IDS)
@PROPERTY
@given(data=st.data())
def test_fast_structure_matches_cattrs_code(
    tp: Any, values: st.SearchStrategy[Any], data: st.DataObject
) -> None:
    wire = CODEC.to_wire(data.draw(values), tp)
    ours = CODEC._fast.get_structure_hook(tp)
    theirs = make_dict_structure_fn(tp, CODEC._fast)
    if not any(f.required for f in record_fields(tp)):  # as record_in() wraps cattrs' code
        theirs = object_in(type_name(tp), theirs)
    detailed = CODEC._detailed.get_structure_hook(tp)
    for case in (wire, mutated(data.draw, wire), data.draw(JSON)):
        mine, cattrs = result(ours, case, tp), result(theirs, case, tp)
        assert (mine[0] == "ok") == (cattrs[0] == "ok"), (case, mine, cattrs)
        if mine[0] == "ok":
            assert same(mine[1], cattrs[1])
        # The fast path only rejects; the detailed one, which explains, must agree.
        assert (mine[0] == "ok") == (result(detailed, case, tp)[0] == "ok"), case


@pytest.mark.parametrize(("tp", "values"), RECORDS, ids=IDS)
@PROPERTY
@given(data=st.data())
def test_records_round_trip(tp: Any, values: st.SearchStrategy[Any], data: st.DataObject) -> None:
    value = data.draw(values)
    assert same(CODEC.decode(CODEC.encode(value, tp), tp), value)


def test_generated_code_does_leaf_work_in_place() -> None:
    hook = CODEC._fast.get_structure_hook(Inner)
    code = "".join(linecache.getlines(hook.__code__.co_filename))
    assert "def structure_Inner(o, _=None):" in code
    assert ".__class__ is not" in code  # the int check, not a call
    assert "for " in code  # the Decimal list, looped here


def test_recursive_records_decode_deep_values_and_say_where_they_break() -> None:
    tree = Node("a", [Node("b", [Node("c")])], Node("d"))
    assert CODEC.from_wire(CODEC.to_wire(tree, Node), Node) == tree
    with pytest.raises(Exception, match=r"kids\[0\]\.kids\[0\]\.label: expected str, got int"):
        CODEC.from_wire({"label": "a", "kids": [{"label": "b", "kids": [{"label": 1}]}]}, Node)


def test_post_init_still_runs() -> None:
    with pytest.raises(Exception, match="qty must not be negative"):
        CODEC.from_wire({"qty": -1}, Checked)
