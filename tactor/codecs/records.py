"""Record (dataclass and attrs class) hooks.

Dataclasses get generated hooks from :mod:`tactor.codecs.codegen`, except
for detailed structuring; attrs classes, and detailed structuring, get
cattrs' generated code.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import attrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from tactor.codecs.codegen import dataclass_in, dataclass_out
from tactor.codecs.jsonschema import record_fields, record_origin, type_name
from tactor.codecs.wire import In, Out, WireConverter, mismatch

__all__ = ["object_in", "record_in", "record_out"]


def object_in(label: str, inner: In) -> In:
    """``inner`` behind a check that the value is a JSON object."""

    def structure_object(value: Any, tp: Any) -> Any:
        if value.__class__ is not dict:
            raise mismatch(label, value)
        return inner(value, tp)

    return structure_object


def record_in(conv: WireConverter, tp: Any) -> In:
    """The structure hook of a dataclass or attrs class (or a generic alias of one)."""
    cls = cast(type, record_origin(tp))
    if attrs.has(cls):
        attrs.resolve_types(cls)  # string annotations
    # A RecursionError from here is how cattrs spots recursive records: let it through.
    if not conv.detailed_validation and dataclasses.is_dataclass(cls):
        generated = dataclass_in(conv, tp)
        if generated is not None:
            return generated
    inner = make_dict_structure_fn(tp, conv)
    if not conv.detailed_validation and any(f.required for f in record_fields(tp)):
        return inner  # its o["field"] fails on any non-object: no need to check first
    return object_in(type_name(tp), inner)


def record_out(conv: WireConverter, tp: Any) -> Out:
    """The unstructure hook of a dataclass or attrs class."""
    cls = cast(type, record_origin(tp))
    if attrs.has(cls):
        attrs.resolve_types(cls)
    try:
        return _make_out(conv, tp)
    except RecursionError:
        # This record's hook is being generated already (a recursive type, or for
        # cattrs a nested generic one, e.g. Box[Box[int]]); left to cattrs, the
        # value would go out by its runtime class and lose the declared type.
        # Generate at the first call.
        hooks: list[Out] = []

        def unstructure_later(value: Any) -> Any:
            if not hooks:
                hooks.append(_make_out(conv, tp))
            return hooks[0](value)

        return unstructure_later


def _make_out(conv: WireConverter, tp: Any) -> Out:
    generated = dataclass_out(conv, tp) if dataclasses.is_dataclass(record_origin(tp)) else None
    return make_dict_unstructure_fn(tp, conv) if generated is None else generated
