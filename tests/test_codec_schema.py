"""JsonCodec.json_schema: the schema of each wire form, and SchemaError as the support check."""

from __future__ import annotations

import collections
import dataclasses
import enum
import re
import typing
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, NamedTuple, NewType, TypedDict, TypeVar
from uuid import UUID

import attrs
import pytest

from tactor.codecs import JsonCodec, TypeCodec
from tactor.codecs.jsonschema import DECIMAL_PATTERN
from tactor.errors import SchemaError

T = TypeVar("T")


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Item:
    sku: str
    qty: int = 1
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Tree:
    label: str
    children: list[Tree]
    parent: Tree | None = None


@attrs.define
class Point:
    x: int
    y: float = 0.0


@dataclasses.dataclass
class Circle:
    radius: float


@dataclasses.dataclass
class Square:
    side: float


@dataclasses.dataclass
class Box(Generic[T]):
    item: T


class Row(TypedDict, total=False):
    a: int
    b: str


class Pair(NamedTuple):
    left: int
    right: str


class Money:
    pass


@dataclasses.dataclass
class Wallet:
    cash: Money


@dataclasses.dataclass
class Loose:
    anything: Any


@attrs.define
class Untyped:
    x = attrs.field()


@dataclasses.dataclass
class Dangling:
    ref: Nowhere  # type: ignore[name-defined]  # noqa: F821 - resolving it must fail


class Weird(enum.Enum):
    A = (1, 2)


@pytest.fixture
def codec() -> JsonCodec:
    return JsonCodec()


@pytest.mark.parametrize(
    ("tp", "schema"),
    [
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (str, {"type": "string"}),
        (None, {"type": "null"}),
        (bytes, {"type": "string", "contentEncoding": "base64"}),
        (Decimal, {"type": ["string", "integer"], "pattern": DECIMAL_PATTERN}),
        (datetime, {"type": "string", "format": "date-time"}),
        (date, {"type": "string", "format": "date"}),
        (time, {"type": "string", "format": "time"}),
        (timedelta, {"type": "number", "description": "duration in seconds"}),
        (UUID, {"type": "string", "format": "uuid"}),
        (NewType("Sku", str), {"type": "string"}),
        (Annotated[int, "meta"], {"type": "integer"}),
        (Literal["a", 1, True, None], {"enum": ["a", 1, True, None]}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (Sequence[str], {"type": "array", "items": {"type": "string"}}),
        (set[int], {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
        (frozenset[int], {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (
            tuple[int, str],
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (
            dict[int, str],
            {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "propertyNames": {"pattern": "^-?(0|[1-9][0-9]*)$"},
            },
        ),
        (
            dict[UUID, bool],
            {
                "type": "object",
                "additionalProperties": {"type": "boolean"},
                "propertyNames": {"format": "uuid"},
            },
        ),
        (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (typing.Optional[str], {"anyOf": [{"type": "string"}, {"type": "null"}]}),  # noqa: UP045
    ],
)
def test_schema_of_plain_types(codec: JsonCodec, tp: Any, schema: dict[str, Any]) -> None:
    assert codec.json_schema(tp) == schema


def test_dataclass_fields_with_defaults_are_not_required(codec: JsonCodec) -> None:
    assert codec.json_schema(Item) == {
        "$ref": "#/$defs/Item",
        "$defs": {
            "Item": {
                "type": "object",
                "title": "Item",
                "properties": {
                    "sku": {"type": "string"},
                    "qty": {"type": "integer"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["sku"],
            }
        },
    }


def test_attrs_class(codec: JsonCodec) -> None:
    defs = codec.json_schema(Point)["$defs"]
    assert defs["Point"]["properties"] == {"x": {"type": "integer"}, "y": {"type": "number"}}
    assert defs["Point"]["required"] == ["x"]


def test_recursive_types_reference_their_definition(codec: JsonCodec) -> None:
    schema = codec.json_schema(Tree)
    assert schema["$ref"] == "#/$defs/Tree"
    props = schema["$defs"]["Tree"]["properties"]
    assert props["children"] == {"type": "array", "items": {"$ref": "#/$defs/Tree"}}
    assert props["parent"] == {"anyOf": [{"$ref": "#/$defs/Tree"}, {"type": "null"}]}
    assert list(schema["$defs"]) == ["Tree"]


def test_enums_and_nested_classes_go_to_defs(codec: JsonCodec) -> None:
    schema = codec.json_schema(dict[Color, list[Item]])
    assert schema["propertyNames"] == {"enum": ["red", "blue"]}
    assert schema["additionalProperties"] == {"type": "array", "items": {"$ref": "#/$defs/Item"}}
    assert set(schema["$defs"]) == {"Item"}
    assert codec.json_schema(Color) == {
        "$ref": "#/$defs/Color",
        "$defs": {"Color": {"title": "Color", "enum": ["red", "blue"]}},
    }


def test_tagged_union_shows_the_type_const(codec: JsonCodec) -> None:
    schema = codec.json_schema(Circle | Square | None)
    circle, square, none = schema["anyOf"]
    tag = {"type": "object", "properties": {"$type": {"const": "Circle"}}, "required": ["$type"]}
    assert circle == {"allOf": [{"$ref": "#/$defs/Circle"}, tag]}
    assert square["allOf"][1]["properties"] == {"$type": {"const": "Square"}}
    assert none == {"type": "null"}
    assert set(schema["$defs"]) == {"Circle", "Square"}


def test_single_class_union_is_not_tagged(codec: JsonCodec) -> None:
    schema = codec.json_schema(Circle | None)
    assert schema["anyOf"] == [{"$ref": "#/$defs/Circle"}, {"type": "null"}]


def test_generic_class_is_named_after_its_arguments(codec: JsonCodec) -> None:
    schema = codec.json_schema(tuple[Box[int], Box[str]])
    assert schema["prefixItems"] == [{"$ref": "#/$defs/Box_int"}, {"$ref": "#/$defs/Box_str"}]
    assert schema["$defs"]["Box_str"]["properties"] == {"item": {"type": "string"}}


def test_same_named_classes_get_distinct_definitions(codec: JsonCodec) -> None:
    other = dataclasses.make_dataclass("Item", [("code", int)])
    other.__module__ = "elsewhere"
    schema = codec.json_schema(tuple[Item, other])  # type: ignore[valid-type]
    assert schema["prefixItems"] == [{"$ref": "#/$defs/Item"}, {"$ref": "#/$defs/elsewhere.Item"}]
    assert schema["$defs"]["elsewhere.Item"]["properties"] == {"code": {"type": "integer"}}


def test_typeddict_and_namedtuple(codec: JsonCodec) -> None:
    row = codec.json_schema(Row)["$defs"]["Row"]
    assert row["properties"] == {"a": {"type": "integer"}, "b": {"type": "string"}}
    assert "required" not in row
    pair = codec.json_schema(Pair)["$defs"]["Pair"]
    assert pair["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert (pair["minItems"], pair["maxItems"]) == (2, 2)


def test_registered_type_uses_its_schema(codec: JsonCodec) -> None:
    codec.register(TypeCodec(Money, str, Money, {"type": "string", "pattern": "^[0-9]+$"}))
    props = codec.json_schema(Wallet)["$defs"]["Wallet"]["properties"]
    assert props == {"cash": {"type": "string", "pattern": "^[0-9]+$"}}


def test_unknown_class_goes_to_the_hook(codec: JsonCodec) -> None:
    seen: list[type] = []

    def hook(cls: type) -> dict[str, Any]:
        seen.append(cls)
        return {"description": "deferred"}

    schema = codec.json_schema(list[Money], on_unknown=hook)
    assert schema == {"type": "array", "items": {"description": "deferred"}}
    assert seen == [Money]


def test_hook_can_reject_a_class(codec: JsonCodec) -> None:
    def reject(cls: type) -> dict[str, Any]:
        raise SchemaError(f"{cls.__name__} is not allowed here")

    with pytest.raises(SchemaError, match="Money is not allowed here"):
        codec.json_schema(Wallet, on_unknown=reject)


def test_returned_schema_is_a_fresh_copy(codec: JsonCodec) -> None:
    codec.json_schema(int)["type"] = "mutated"
    assert codec.json_schema(int) == {"type": "integer"}


@pytest.mark.parametrize(
    ("tp", "message"),
    [
        (Any, "Any is not supported: use a concrete type"),
        (object, "object is not supported: use a concrete type"),
        (list[Any], "Any is not supported"),
        (Loose, "Any is not supported: use a concrete type (in Loose.anything)"),
        (Untyped, "Any is not supported: use a concrete type (in Untyped.x)"),
        (Callable[[int], str], "callables are not supported"),
        (Callable, "callables are not supported"),
        (T, "unbound type variable ~T is not supported"),
        (Box, "unbound type variable ~T is not supported (in Box.item)"),
        (list, "bare list is not supported: add type parameters, e.g. list[int]"),
        (dict, "bare dict is not supported: add type parameters, e.g. dict[str, int]"),
        (typing.List, "bare list is not supported: add type parameters"),  # noqa: UP006
        (tuple, "bare tuple is not supported: add type parameters"),
        (set, "bare set is not supported: add type parameters"),
        (Sequence, "bare Sequence is not supported: add type parameters"),
        (Money, "no codec for class Money: register a TypeCodec for it"),
        (Wallet, "no codec for class Money: register a TypeCodec for it (in Wallet.cash)"),
        (collections.deque[int], "deque[int] is not supported"),
        (type[int], "type[int] is not supported"),
        ("Item", "unsupported type annotation 'Item'"),
        (dict[float, int], "dict keys of type float are not supported"),
        (dict[Item, int], "dict keys of type Item are not supported"),
        (dict[Literal[True], int], "dict keys of type Literal[True] must have str or int values"),
        (Literal[1.5j], "Literal value 1.5j is not a JSON scalar"),
        (Weird, "enum Weird has a value that is not a JSON scalar: (1, 2)"),
        (Dangling, "cannot resolve the type hints of Dangling (name 'Nowhere' is not defined)"),
        (collections.namedtuple("Bare", "a b"), "namedtuple Bare needs a type for every field"),
    ],
)
def test_unsupported_types_raise_schema_error(codec: JsonCodec, tp: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=f"^{re.escape(message)}"):
        codec.json_schema(tp)


def test_union_members_with_the_same_tag_are_rejected(codec: JsonCodec) -> None:
    message = "union members Box[int] and Box[str] share the $type tag 'Box'"
    with pytest.raises(SchemaError, match=f"^{re.escape(message)}"):
        codec.json_schema(Box[int] | Box[str])
