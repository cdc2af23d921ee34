"""What the converter modules share: hook types, wire errors and the converter class.

A :class:`WireConverter` is a cattrs converter that also knows the *shape* of
some of its hooks (:data:`Shape`: what the hook does, in terms a code
generator can copy), so generated code can do that work in place instead of
calling the hook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cattrs import Converter

from tactor.codecs.jsonschema import FieldInfo, NoneType

__all__ = [
    "Entries",
    "Exact",
    "In",
    "Inline",
    "Items",
    "Maybe",
    "Out",
    "OutEntries",
    "OutItems",
    "Record",
    "Shape",
    "WireConverter",
    "WireError",
    "choices",
    "got",
    "late_in",
    "late_out",
    "mismatch",
    "show",
]

#: A structure hook: (wire data, type) -> value.
In = Callable[[Any, Any], Any]
#: An unstructure hook: value -> wire data.
Out = Callable[[Any], Any]


class WireError(ValueError):
    """Wire data does not fit its type; the message is the problem, without its path."""


_GOT = {NoneType: "None", bool: "bool", int: "int", float: "float", str: "str"}


def got(value: Any) -> str:
    """The type name of a wire value, for messages."""
    return _GOT.get(value.__class__) or type(value).__name__


def show(value: Any) -> str:
    """A wire value for a message: scalars shortened (the data is untrusted), others by type."""
    if value.__class__ not in _GOT:
        return got(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def mismatch(label: str, value: Any) -> WireError:
    """The error for a value of the wrong JSON type: ``expected <label>, got <type>``."""
    return WireError(f"expected {label}, got {got(value)}")


def choices(values: list[Any]) -> str:
    """``one of 'a', 'b'`` for a message, cut after six values."""
    shown = ", ".join(repr(v) for v in values[:6])
    return f"one of {shown}, ..." if len(values) > 6 else f"one of {shown}"


@dataclass(frozen=True)
class Exact:
    """The hook returns the value itself when its class is exactly ``cls``, else raises."""

    cls: type


@dataclass(frozen=True)
class Maybe:
    """The hook returns None for None and ``hook(value, tp)`` for anything else."""

    hook: In
    tp: Any


@dataclass(frozen=True)
class Items:
    """The hook takes a list only, and returns ``build([hook(x, tp) for x in value])``."""

    hook: In
    tp: Any
    label: str
    build: Callable[[list[Any]], Any]


@dataclass(frozen=True)
class Entries:
    """The hook takes a dict only, and returns ``{k: hook(v, tp) for k, v in value.items()}``.

    A key that is not a str raises ``WireError(key_error)``.
    """

    hook: In
    tp: Any
    label: str
    key_error: str


@dataclass(frozen=True)
class OutItems:
    """The unstructure hook returns ``[hook(x) for x in value]``."""

    hook: Out


@dataclass(frozen=True)
class OutEntries:
    """The unstructure hook returns ``{dump(k): hook(v) for k, v in value.items()}``.

    ``dump`` None stands for the key itself.
    """

    dump: Callable[[Any], str] | None
    hook: Out


@dataclass(frozen=True)
class Inline:
    """Where ``test`` holds for a value, the hook returns ``value``; elsewhere, call the hook.

    Both are Python expressions over ``{v}`` (the value) and ``{name}`` for
    each entry of ``names``. A structure hook may raise instead, with another
    exception (the fast path only needs to reject); an unstructure hook's
    ``value`` must not raise where ``test`` holds.
    """

    test: str
    value: str
    names: dict[str, Any]


@dataclass(frozen=True)
class Record:
    """A hook generated for record ``tp`` by :mod:`~tactor.codecs.codegen` from these hooks."""

    tp: Any
    fields: list[FieldInfo]
    hooks: list[Callable[..., Any]]


#: What a hook does, for code that would rather do it in place than call it.
Shape = Exact | Maybe | Items | Entries | OutItems | OutEntries | Inline | Record


class WireConverter(Converter):
    """A cattrs converter that records the shape of the hooks it can describe."""

    __slots__ = ("shapes",)

    def __init__(self, *, detailed: bool) -> None:
        super().__init__(detailed_validation=detailed)
        self.shapes: dict[Callable[..., Any], Shape] = {}

    def exact_class(self, hook: In) -> type | None:
        """The class ``hook`` accepts exactly, when it is an :class:`Exact` hook."""
        shape = self.shapes.get(hook)
        return shape.cls if isinstance(shape, Exact) else None


def late_in(conv: Converter, tp: Any) -> In:
    """``tp``'s structure hook, or one that looks it up when called if it is being made."""
    try:
        return conv.get_structure_hook(tp)
    except RecursionError:
        # tp is a record whose hook is being generated right now (a recursive
        # type): look its hook up when called instead.
        return lambda value, _: conv.structure(value, tp)


def late_out(conv: Converter, tp: Any) -> Out:
    """``tp``'s unstructure hook, or one that looks it up when called if it is being made."""
    try:
        return conv.get_unstructure_hook(tp)
    except RecursionError:
        return lambda value: conv.unstructure(value, unstructure_as=tp)
