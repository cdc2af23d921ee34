"""JSON Schema of wire forms; the same walk is the codec's support check.

A type is supported by :class:`~tactor.codecs.json.JsonCodec` exactly when
:class:`SchemaWalker` can describe it: every rule the converter applies has a
schema here, and everything else raises :class:`~tactor.errors.SchemaError`
naming the offending type. The converter also reads the helpers below (type
stripping, record fields, dict-key rules, union tags and wire shapes) so the
schema and the marshalling cannot drift apart.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping, MutableMapping, MutableSequence, MutableSet, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal, NewType, TypeVar, Union, get_args, get_origin
from uuid import UUID

import attrs
from typing_extensions import is_typeddict

from tactor.codecs.base import UnknownTypeHook
from tactor.errors import SchemaError

NoneType = type(None)
#: The schema of a registered user type (or of a registered base class), else None.
UserSchemas = Callable[[type], "dict[str, Any] | None"]
#: The key that names the member class of a tagged union on the wire.
TAG = "$type"
DECIMAL_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
INT_KEY_PATTERN = r"^-?(0|[1-9][0-9]*)$"
_INT_KEY_RE = re.compile(INT_KEY_PATTERN)

LIST_ORIGINS: frozenset[Any] = frozenset({list, Sequence, MutableSequence})
SET_ORIGINS: frozenset[Any] = frozenset({set, frozenset, AbstractSet, MutableSet})
MAP_ORIGINS: frozenset[Any] = frozenset({dict, Mapping, MutableMapping})
_BARE = LIST_ORIGINS | SET_ORIGINS | MAP_ORIGINS | {tuple}

_SCALARS: dict[Any, dict[str, Any]] = {
    NoneType: {"type": "null"},
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bytes: {"type": "string", "contentEncoding": "base64"},
    # Decimals are written as strings; plain JSON integers are accepted too.
    Decimal: {"type": ["string", "integer"], "pattern": DECIMAL_PATTERN},
    datetime: {"type": "string", "format": "date-time"},
    date: {"type": "string", "format": "date"},
    time: {"type": "string", "format": "time"},
    timedelta: {"type": "number", "description": "duration in seconds"},
    UUID: {"type": "string", "format": "uuid"},
}
_JSON_SCALARS = (str, int, float, bool)


def _fail(what: str, where: str) -> typing.NoReturn:
    raise SchemaError(f"{what} (in {where})" if where else what)


def strip(tp: Any) -> Any:
    """Return ``tp`` without ``Annotated`` and ``NewType`` wrappers (both travel as their base)."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif isinstance(tp, NewType):
            tp = tp.__supertype__
        else:
            return NoneType if tp is None else tp


def is_union(tp: Any) -> bool:
    """Whether ``tp`` is ``X | Y`` or ``Union[X, Y]`` (``Optional`` included)."""
    return get_origin(tp) in (Union, types.UnionType)


def type_name(tp: Any) -> str:
    """A short readable name for a type hint, for messages: ``list[int]``, ``Item | None``."""
    if tp is None or tp is NoneType:
        return "None"
    if isinstance(tp, NewType):
        return tp.__name__
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return type_name(args[0])
    if is_union(tp):
        return " | ".join(type_name(a) for a in args)
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        base = getattr(origin, "__name__", repr(origin))
        return f"{base}[{inner}]" if args else base
    return tp.__name__ if isinstance(tp, type) else repr(tp)


def record_origin(tp: Any) -> type | None:
    """The dataclass or attrs class behind ``tp`` (also for ``Generic[...]`` aliases), else None."""
    cls = get_origin(tp) or tp
    if isinstance(cls, type) and (dataclasses.is_dataclass(cls) or attrs.has(cls)):
        return cls
    return None


def is_namedtuple(tp: Any) -> bool:
    """Whether ``tp`` is a ``NamedTuple`` (or ``collections.namedtuple``) class."""
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def _hints(cls: Any, extras: bool = True) -> dict[str, Any]:
    try:
        if attrs.has(cls):
            attrs.resolve_types(cls)
        return typing.get_type_hints(cls, include_extras=extras)
    except Exception as exc:  # NameError for a forward reference that does not resolve, ...
        _fail(f"cannot resolve the type hints of {cls.__qualname__} ({exc})", "")


def namedtuple_types(cls: type) -> list[Any]:
    """The field types of a NamedTuple class in order; raises SchemaError when untyped."""
    hints = _hints(cls)
    fields: tuple[str, ...] = getattr(cls, "_fields", ())
    if set(hints) != set(fields):
        _fail(f"namedtuple {cls.__qualname__} needs a type for every field", "")
    return [hints[f] for f in fields]


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One field of a record as it travels: its key, resolved type and whether it must be sent."""

    name: str
    type: Any
    required: bool


def _substitute(tp: Any, mapping: dict[Any, Any]) -> Any:
    if isinstance(tp, TypeVar):
        return mapping.get(tp, tp)
    params = getattr(tp, "__parameters__", ())
    if params and mapping and not isinstance(tp, type):
        return tp[tuple(mapping.get(p, p) for p in params)]
    return tp


def _typevar_map(tp: Any, cls: type) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for base in reversed(cls.__mro__):
        for orig in base.__dict__.get("__orig_bases__", ()):
            params = getattr(get_origin(orig), "__parameters__", ())
            args = [_substitute(a, mapping) for a in get_args(orig)]
            mapping.update(zip(params, args, strict=False))
    if get_origin(tp) is cls:
        mapping.update(zip(getattr(cls, "__parameters__", ()), get_args(tp), strict=False))
    return mapping


def record_fields(tp: Any) -> list[FieldInfo]:
    """The init fields of a dataclass/attrs type with type variables substituted.

    Untyped attrs fields come back as ``Any`` so the walker rejects them; raises
    SchemaError when the hints do not resolve.
    """
    cls = record_origin(tp)
    assert cls is not None, tp
    mapping = _typevar_map(tp, cls)
    hints = _hints(cls)
    if attrs.has(cls):
        return [
            FieldInfo(
                a.name,
                _substitute(Any if a.type is None else a.type, mapping),
                a.default is attrs.NOTHING,
            )
            for a in attrs.fields(cls)
            if a.init
        ]
    missing = dataclasses.MISSING
    return [
        FieldInfo(
            f.name,
            _substitute(hints[f.name], mapping),
            f.default is missing and f.default_factory is missing,
        )
        for f in dataclasses.fields(cls)
        if f.init
    ]


@dataclasses.dataclass(frozen=True)
class KeyRule:
    """How a dict key type travels: JSON object keys are strings.

    ``parse`` turns a wire key into the key value and raises (any exception)
    when it does not fit; ``dump`` turns a key into its string (None: already
    a str); ``schema`` is the ``propertyNames`` schema (None: any string).
    """

    name: str
    parse: Callable[[str], Any]
    dump: Callable[[Any], str] | None
    schema: dict[str, Any] | None


def _key_table(name: str, values: list[Any], where: str) -> KeyRule:
    wire: dict[str, Any] = {}
    for v in values:
        raw = v.value if isinstance(v, Enum) else v
        if not isinstance(raw, (str, int)) or isinstance(raw, bool):
            _fail(f"dict keys of type {name} must have str or int values, not {raw!r}", where)
        wire[str(raw)] = v
    out = {v: k for k, v in wire.items()}
    return KeyRule(name, wire.__getitem__, out.__getitem__, {"enum": list(wire)})


def _parse_int_key(key: str) -> int:
    if _INT_KEY_RE.fullmatch(key) is None:
        raise ValueError(key)
    return int(key)


_STR_KEY = KeyRule("str", str, None, None)
_INT_KEY = KeyRule("int", _parse_int_key, str, {"pattern": INT_KEY_PATTERN})
_UUID_KEY = KeyRule("UUID", UUID, str, {"format": "uuid"})


def key_rule(tp: Any, where: str = "") -> KeyRule:
    """The rule for dict keys of type ``tp``; raises SchemaError for unsupported key types."""
    base = strip(tp)
    if base is str or base is int or base is UUID:
        return {str: _STR_KEY, int: _INT_KEY, UUID: _UUID_KEY}[base]
    if get_origin(base) is Literal:
        return _key_table(type_name(base), list(get_args(base)), where)
    if isinstance(base, type) and issubclass(base, Enum):
        return _key_table(base.__name__, list(base), where)
    _fail(
        f"dict keys of type {type_name(tp)} are not supported: use str, int, UUID, "
        "an Enum or a Literal",
        where,
    )


def union_tags(tp: Any, is_user: Callable[[type], bool]) -> dict[str, Any]:
    """Tag -> member for the records of union ``tp`` that travel tagged (empty if untagged).

    Records are tagged with their class name when the union holds more than
    one of them; raises SchemaError when two members would share a tag.
    """
    records = [m for m in get_args(tp) if _tagged_record(m, is_user)]
    if len(records) < 2:
        return {}
    tags: dict[str, Any] = {}
    for member in records:
        tag = record_origin(strip(member)).__name__  # type: ignore[union-attr]
        if tag in tags:
            _fail(
                f"union members {type_name(tags[tag])} and {type_name(member)} "
                f"share the {TAG} tag {tag!r}",
                type_name(tp),
            )
        tags[tag] = member
    return tags


def _tagged_record(member: Any, is_user: Callable[[type], bool]) -> bool:
    cls = record_origin(strip(member))
    return cls is not None and not is_user(cls)


class SchemaWalker:
    """Builds one self-contained JSON Schema (draft 2020-12) for a type.

    Named classes (records, enums, TypedDicts, NamedTuples) are collected in
    ``defs`` and referenced by ``$ref`` so recursive types terminate. Raises
    :class:`SchemaError` for any part that the codec cannot marshal.
    """

    def __init__(self, user: UserSchemas, on_unknown: UnknownTypeHook | None = None) -> None:
        self._user = user
        self._on_unknown = on_unknown
        self.defs: dict[str, dict[str, Any]] = {}
        self._names: dict[Any, str] = {}

    def document(self, tp: Any) -> dict[str, Any]:
        """The schema of ``tp`` with a top-level ``$defs`` when any class was named."""
        schema = self.schema(tp)
        return {**schema, "$defs": self.defs} if self.defs else schema

    def schema(self, tp: Any, where: str = "") -> dict[str, Any]:
        """The schema of ``tp``, whose refs point into :attr:`defs`; ``where`` is for messages."""
        tp = strip(tp)
        if isinstance(tp, type) and (user := self._user(tp)) is not None:
            return copy.deepcopy(user)
        if _hashable(tp) and tp in _SCALARS:
            return copy.deepcopy(_SCALARS[tp])
        origin = get_origin(tp)
        if origin is Literal:
            return {"enum": [self._literal_value(a, where) for a in get_args(tp)]}
        if is_union(tp):
            return self._union(tp, where)
        if origin is not None:
            return self._generic(tp, origin, where)
        return self._plain(tp, where)

    def _plain(self, tp: Any, where: str) -> dict[str, Any]:
        if tp is Any or tp is object:
            _fail(f"{type_name(tp)} is not supported: use a concrete type", where)
        if isinstance(tp, TypeVar):
            _fail(f"unbound type variable {tp} is not supported", where)
        if _hashable(tp) and (tp in _BARE or tp is Callable):
            _fail(_bare_message(tp), where)
        if not isinstance(tp, type):
            _fail(f"unsupported type annotation {tp!r}", where)
        if issubclass(tp, Enum):
            return self._ref(tp, self._enum_def)
        if record_origin(tp) is not None:
            return self._ref(tp, self._record_def)
        if is_typeddict(tp):
            return self._ref(tp, self._typeddict_def)
        if is_namedtuple(tp):
            return self._ref(tp, self._namedtuple_def)
        if self._on_unknown is not None:
            return dict(self._on_unknown(tp))
        _fail(f"no codec for class {tp.__qualname__}: register a TypeCodec for it", where)

    def _generic(self, tp: Any, origin: Any, where: str) -> dict[str, Any]:
        args = get_args(tp)
        if origin is Callable or not args:
            _fail(_bare_message(origin), where)
        if origin in LIST_ORIGINS or origin in SET_ORIGINS:
            items = self.schema(args[0], where)
            unique = {"uniqueItems": True} if origin in SET_ORIGINS else {}
            return {"type": "array", "items": items, **unique}
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": self.schema(args[0], where)}
        if origin is tuple:
            return {
                "type": "array",
                "prefixItems": [self.schema(a, where) for a in args],
                "minItems": len(args),
                "maxItems": len(args),
            }
        if origin in MAP_ORIGINS:
            rule = key_rule(args[0], where)
            schema = {"type": "object", "additionalProperties": self.schema(args[1], where)}
            return {**schema, "propertyNames": rule.schema} if rule.schema else schema
        if record_origin(tp) is not None:
            return self._ref(tp, self._record_def)
        _fail(f"{type_name(tp)} is not supported", where)

    def _union(self, tp: Any, where: str) -> dict[str, Any]:
        tags = union_tags(tp, lambda cls: self._user(cls) is not None)
        tag_of = {id(m): t for t, m in tags.items()}
        members = []
        for member in get_args(tp):
            schema = self.schema(member, where)
            if id(member) in tag_of:
                tag_schema = {
                    "type": "object",
                    "properties": {TAG: {"const": tag_of[id(member)]}},
                    "required": [TAG],
                }
                schema = {"allOf": [schema, tag_schema]}
            members.append(schema)
        return {"anyOf": members}

    def _literal_value(self, value: Any, where: str) -> Any:
        raw = value.value if isinstance(value, Enum) else value
        if raw is not None and not isinstance(raw, _JSON_SCALARS):
            _fail(f"Literal value {value!r} is not a JSON scalar", where)
        return raw

    def _ref(self, tp: Any, build: Callable[[Any, str], dict[str, Any]]) -> dict[str, Any]:
        name = self._names.get(tp)
        if name is None:
            name = self._names[tp] = self._unique_name(tp)
            self.defs[name] = {}  # reserved first, so a recursive reference finds it
            self.defs[name] = build(tp, name)
        return {"$ref": f"#/$defs/{name}"}

    def _unique_name(self, tp: Any) -> str:
        cls = get_origin(tp) or tp
        candidates = [type_name(tp), f"{cls.__module__}.{type_name(tp)}"]
        for raw in candidates:
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", raw).strip("_")
            if name not in self.defs:
                return name
        return f"{name}_{len(self.defs)}"

    def _record_def(self, tp: Any, name: str) -> dict[str, Any]:
        fields = record_fields(tp)
        where = type_name(tp)
        props = {f.name: self.schema(f.type, f"{where}.{f.name}") for f in fields}
        schema: dict[str, Any] = {"type": "object", "title": name, "properties": props}
        required = [f.name for f in fields if f.required]
        return {**schema, "required": required} if required else schema

    def _typeddict_def(self, tp: Any, name: str) -> dict[str, Any]:
        hints = _hints(tp, extras=False)  # drops Required/NotRequired: __required_keys__ says
        props = {k: self.schema(t, f"{tp.__qualname__}.{k}") for k, t in hints.items()}
        required = [k for k in hints if k in tp.__required_keys__]
        schema: dict[str, Any] = {"type": "object", "title": name, "properties": props}
        return {**schema, "required": required} if required else schema

    def _namedtuple_def(self, tp: Any, name: str) -> dict[str, Any]:
        items = [self.schema(t, tp.__qualname__) for t in namedtuple_types(tp)]
        return {
            "type": "array",
            "title": name,
            "prefixItems": items,
            "minItems": len(items),
            "maxItems": len(items),
        }

    def _enum_def(self, tp: type[Enum], name: str) -> dict[str, Any]:
        values = [m.value for m in tp]
        for v in values:
            if not isinstance(v, _JSON_SCALARS):
                _fail(f"enum {tp.__qualname__} has a value that is not a JSON scalar: {v!r}", "")
        return {"title": name, "enum": values}


def _bare_message(tp: Any) -> str:
    if tp is Callable:
        return "callables are not supported"
    example = "[str, int]" if tp in MAP_ORIGINS else "[int]"
    return (
        f"bare {type_name(tp)} is not supported: add type parameters, e.g. {type_name(tp)}{example}"
    )


def _hashable(tp: Any) -> bool:
    try:
        hash(tp)
    except TypeError:
        return False
    return True
