"""Builds the cattrs converters behind :class:`~tactor.codecs.json.JsonCodec`.

Each codec owns converters with the same rules: a fast one for the normal
path and a detailed one, run only after a decode failed, whose exception
groups carry the path of every problem. cattrs' stock hooks are lenient
(``int(value)``): leaf hooks come strict from the codec, and containers, keys,
unions and records check the JSON type of the value first. cattrs' global
converter is never touched. Records are in :mod:`~tactor.codecs.records`,
unions in :mod:`~tactor.codecs.unions`.
"""

from __future__ import annotations

from collections import abc
from collections.abc import Callable, Iterable
from enum import Enum, Flag
from typing import Any, Literal, cast, get_args, get_origin

from cattrs.dispatch import _DispatchNotFound
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.fns import identity
from typing_extensions import is_typeddict

from tactor.codecs.jsonschema import (
    LIST_ORIGINS,
    MAP_ORIGINS,
    SET_ORIGINS,
    UserSchemas,
    is_namedtuple,
    is_union,
    key_rule,
    namedtuple_types,
    record_origin,
    type_name,
)
from tactor.codecs.records import object_in, record_in, record_out
from tactor.codecs.unions import WireClasses, union_in, union_out
from tactor.codecs.wire import (
    Entries,
    Exact,
    In,
    Inline,
    Items,
    Out,
    OutEntries,
    OutItems,
    WireConverter,
    WireError,
    choices,
    late_in,
    late_out,
    mismatch,
    show,
)

__all__ = ["build_converter"]


def _exact_in(conv: WireConverter, cls: type) -> In:
    """The hook accepting exactly ``cls`` (bool is not an int here, nor "1")."""
    label = type_name(cls)

    def structure_exact(value: Any, _: Any) -> Any:
        if value.__class__ is cls:
            return value
        raise mismatch(label, value)

    conv.shapes[structure_exact] = Exact(cls)
    return structure_exact


def _values_in(conv: WireConverter, label: str, pairs: list[tuple[Any, Any]]) -> In:
    """A hook accepting exactly the wire values of ``pairs`` (wire value, result)."""
    # Keyed by (class, value): True == 1 and 1.0 == 1, but JSON tells them apart.
    table = {(raw.__class__, raw): result for raw, result in pairs}
    for raw, result in pairs:
        if raw.__class__ is float and raw.is_integer():
            table.setdefault((int, int(raw)), result)  # JSON may write 1.0 as 1
    expected = f"{label} ({choices([raw for raw, _ in pairs])})"

    def structure_value(value: Any, _: Any) -> Any:
        try:
            return table[(value.__class__, value)]
        except (KeyError, TypeError):
            raise WireError(f"expected {expected}, got {show(value)}") from None

    conv.shapes[structure_value] = Inline("True", "{table}[({v}.__class__, {v})]", {"table": table})
    return structure_value


def _literal_in(conv: WireConverter, tp: Any) -> In:
    pairs = [(a.value if isinstance(a, Enum) else a, a) for a in get_args(tp)]
    return _values_in(conv, "Literal", pairs)


def _enum_in(conv: WireConverter, tp: type[Enum]) -> In:
    return _values_in(conv, tp.__name__, [(m.value, m) for m in tp])


def _enum_unstructure(tp: type[Enum], conv: WireConverter) -> Out:
    """cattrs' enum hook (``cattrs.enums`` since 26.1; written here for older cattrs)."""
    if "_value_" in getattr(tp, "__annotations__", {}):
        return lambda member: conv.unstructure(member.value)
    return lambda member: member.value


def _enum_out(conv: WireConverter, tp: type[Enum]) -> Out:
    """cattrs' enum hook, or its work in place where it returns the member's own ``_value_``.

    ``value`` is a property (Python code); ``_value_`` is what it returns.
    Checked once per class, member by member; Flag classes (whose combined
    members are made on demand) keep cattrs' hook.
    """
    plain: Out = _enum_unstructure(tp, conv)
    try:
        own = not issubclass(tp, Flag) and all(plain(m) is m._value_ for m in tp)
    except Exception:  # a member the hook refuses: it says so when one is sent
        own = False
    if not own:
        return plain

    def unstructure_enum(value: Any) -> Any:
        return value._value_ if value.__class__ is tp else plain(value)

    conv.shapes[unstructure_enum] = Inline("{v}.__class__ is {cls}", "{v}._value_", {"cls": tp})
    return unstructure_enum


def _gather(tp: Any, jobs: Iterable[tuple[int | str, Any, In, Any]]) -> list[Any]:
    """Run (index, item, hook, type) jobs, raising one group with every failure, noted by index.

    Only the detailed converter uses it, after a failure, so it favours
    completeness over speed.
    """
    out, errors = [], []
    for index, item, hook, item_type in jobs:
        try:
            out.append(hook(item, item_type))
        except Exception as exc:
            exc.add_note(IterableValidationNote(f"Structuring @ {index!r}", index, item_type))
            errors.append(exc)
    if errors:
        raise IterableValidationError(f"While structuring {type_name(tp)}", errors, tp)
    return out


_BUILDERS: dict[Any, Callable[[list[Any]], Any]] = {
    **dict.fromkeys((set, abc.Set, abc.MutableSet), set),
    tuple: tuple,
    frozenset: frozenset,
}


def _seq_in(conv: WireConverter, tp: Any) -> In:
    origin, args = get_origin(tp), get_args(tp)
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return _fixed_in(conv, tp, list(args), tuple)
    elem, label = args[0], type_name(tp)
    hook, build = late_in(conv, elem), _BUILDERS.get(origin, list)
    if conv.detailed_validation:

        def structure_seq_detailed(value: Any, _: Any) -> Any:
            if value.__class__ is not list:
                raise mismatch(label, value)
            out = _gather(tp, ((i, item, hook, elem) for i, item in enumerate(value)))
            return out if build is list else build(out)

        return structure_seq_detailed
    leaf = conv.exact_class(hook)
    structure = (
        _seq_hook(label, hook, elem, build) if leaf is None else _leaves_in(label, leaf, build)
    )
    conv.shapes[structure] = Items(hook, elem, label, build)
    return structure


def _seq_hook(label: str, hook: In, elem: Any, build: Callable[[list[Any]], Any]) -> In:
    def structure_seq(value: Any, _: Any) -> Any:
        if value.__class__ is not list:
            raise mismatch(label, value)
        out = []
        for item in value:  # cheaper than a comprehension for short arrays
            out.append(hook(item, elem))
        return out if build is list else build(out)

    return structure_seq


def _leaves_in(label: str, leaf: type, build: Callable[[list[Any]], Any]) -> In:
    """An array of one exact leaf class: checked in place, then copied."""
    leaf_label = type_name(leaf)

    def structure_leaves(value: Any, _: Any) -> Any:
        if value.__class__ is not list:
            raise mismatch(label, value)
        for item in value:
            if item.__class__ is not leaf:
                raise mismatch(leaf_label, item)
        return build(value)

    return structure_leaves


def _fixed_in(conv: WireConverter, tp: Any, types: list[Any], build: Callable[..., Any]) -> In:
    """A hook for a fixed-length array (``tuple[A, B]``, NamedTuple) built by ``build``."""
    hooks = [(late_in(conv, t), t) for t in types]
    size, label, detailed = len(hooks), type_name(tp), conv.detailed_validation

    def structure_fixed(value: Any, _: Any) -> Any:
        if value.__class__ is not list:
            raise mismatch(label, value)
        if len(value) != size:
            raise WireError(f"expected {size} items, got {len(value)}")
        pairs = zip(hooks, value, strict=True)
        if detailed:
            return build(_gather(tp, ((i, x, h, t) for i, ((h, t), x) in enumerate(pairs))))
        return build([hook(item, t) for (hook, t), item in pairs])

    return structure_fixed


def _map_in(conv: WireConverter, tp: Any) -> In:
    key_type, val_type = get_args(tp)
    rule, hook, label = key_rule(key_type), late_in(conv, val_type), type_name(tp)
    parse, key_error = rule.parse, f"expected {rule.name} key"

    def key(raw: Any) -> Any:
        if raw.__class__ is str:
            try:
                return parse(raw)
            except Exception:  # each rule raises its own kind (ValueError, KeyError)
                pass
        raise WireError(key_error)

    if conv.detailed_validation:

        def entry(item: tuple[Any, Any], _: Any) -> tuple[Any, Any]:
            return key(item[0]), hook(item[1], val_type)

        def structure_map_detailed(value: Any, _: Any) -> dict[Any, Any]:
            if value.__class__ is not dict:
                raise mismatch(label, value)
            return dict(_gather(tp, ((k, (k, v), entry, tp) for k, v in value.items())))

        return structure_map_detailed
    if parse is not str:

        def structure_keyed_map(value: Any, _: Any) -> dict[Any, Any]:
            if value.__class__ is not dict:
                raise mismatch(label, value)
            return {key(k): hook(v, val_type) for k, v in value.items()}

        return structure_keyed_map
    # JSON keys are always str: str keys need no call.
    leaf = conv.exact_class(hook)
    leaf_label = type_name(leaf)

    def structure_map(value: Any, _: Any) -> dict[Any, Any]:
        if value.__class__ is not dict:
            raise mismatch(label, value)
        if leaf is not None:  # leaf values of one exact class: check, then copy
            for k, v in value.items():
                if k.__class__ is not str:
                    raise WireError(key_error)
                if v.__class__ is not leaf:
                    raise mismatch(leaf_label, v)
            return dict(value)
        return {k if k.__class__ is str else key(k): hook(v, val_type) for k, v in value.items()}

    conv.shapes[structure_map] = Entries(hook, val_type, label, key_error)
    return structure_map


def _seq_out(conv: WireConverter, tp: Any) -> Out:
    args = get_args(tp)
    if get_origin(tp) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return _fixed_out(conv, list(args))
    hook = late_out(conv, args[0])
    if hook is identity:
        return list  # JSON has only arrays: tuples and sets go out as lists.

    def unstructure_seq(value: Any) -> list[Any]:
        out = []
        for item in value:  # cheaper than a comprehension for short arrays
            out.append(hook(item))
        return out

    conv.shapes[unstructure_seq] = OutItems(hook)
    return unstructure_seq


def _fixed_out(conv: WireConverter, types: list[Any]) -> Out:
    hooks = [late_out(conv, t) for t in types]
    return lambda value: [hook(item) for hook, item in zip(hooks, value, strict=True)]


def _map_out(conv: WireConverter, tp: Any) -> Out:
    key_type, val_type = get_args(tp)
    dump, hook = key_rule(key_type).dump, late_out(conv, val_type)
    if dump is None and hook is identity:
        return dict
    if dump is None:

        def unstructure_map(value: Any) -> dict[Any, Any]:
            return {k: hook(v) for k, v in value.items()}

    else:

        def unstructure_map(value: Any) -> dict[Any, Any]:
            return {dump(k): hook(v) for k, v in value.items()}

    conv.shapes[unstructure_map] = OutEntries(dump, hook)
    return unstructure_map


#: cattrs consults its per-class table before any predicate hook, and its
#: defaults put lenient int/float/str/bytes hooks there that would also catch
#: IntEnum and StrEnum (and, before cattrs 26.1, an Enum hook that would catch
#: every enum). This marker makes that table say "not here".
_NOT_HERE = cast(Any, _DispatchNotFound)


def _is_seq(tp: Any) -> bool:
    origin = get_origin(tp)
    return bool(get_args(tp)) and (
        origin in LIST_ORIGINS or origin in SET_ORIGINS or origin is tuple
    )


def _is_map(tp: Any) -> bool:
    return get_origin(tp) in MAP_ORIGINS and len(get_args(tp)) == 2


def build_converter(
    user: UserSchemas,
    leaves_in: abc.Mapping[Any, In | Exact],
    leaves_out: abc.Mapping[Any, Out],
    wire_classes: WireClasses,
    *,
    detailed: bool,
    inline: abc.Mapping[Callable[..., Any], Inline],
) -> WireConverter:
    """A converter with tactor's rules for containers, keys, unions, records and enums.

    ``leaves_in``/``leaves_out`` are the hooks for leaf types; an
    :class:`Exact` in ``leaves_in`` stands for a hook accepting exactly that
    class, and a type without an out hook is passed through. ``inline`` are
    inline forms of leaf hooks (see :class:`~tactor.codecs.wire.Inline`);
    ``wire_classes`` routes union members; ``user`` finds registered types'
    schemas; ``detailed`` selects cattrs' detailed validation.
    """
    conv = WireConverter(detailed=detailed)
    conv.shapes.update(inline)
    for leaf in (int, float, str, bytes, Enum):  # (Enum: cattrs before 26.1 has one there)
        conv.register_structure_hook(leaf, _NOT_HERE)
    for out_leaf in (str, bytes):
        conv.register_unstructure_hook(out_leaf, _NOT_HERE)
    exact = {h: _exact_in(conv, h.cls) for h in leaves_in.values() if isinstance(h, Exact)}
    leaf_in = {tp: exact[h] if isinstance(h, Exact) else h for tp, h in leaves_in.items()}
    ins: list[tuple[Callable[[Any], bool], Callable[[Any], In]]] = [
        (lambda t: t in leaf_in, lambda t: leaf_in[t]),
        (lambda t: get_origin(t) is Literal, lambda t: _literal_in(conv, t)),
        (lambda t: isinstance(t, type) and issubclass(t, Enum), lambda t: _enum_in(conv, t)),
        (_is_seq, lambda t: _seq_in(conv, t)),
        (_is_map, lambda t: _map_in(conv, t)),
        (lambda t: record_origin(t) is not None, lambda t: record_in(conv, t)),
        (is_typeddict, lambda t: object_in(type_name(t), conv.gen_structure_typeddict(t))),
        (is_namedtuple, lambda t: _fixed_in(conv, t, namedtuple_types(t), lambda a: t(*a))),
        (is_union, lambda t: union_in(conv, user, wire_classes, t)),
    ]
    for predicate, factory in ins:
        conv.register_structure_hook_factory(predicate, factory)
    outs: list[tuple[Callable[[Any], bool], Callable[[Any], Out]]] = [
        (lambda t: t in leaves_out, lambda t: leaves_out[t]),
        (_is_seq, lambda t: _seq_out(conv, t)),
        (_is_map, lambda t: _map_out(conv, t)),
        (lambda t: record_origin(t) is not None, lambda t: record_out(conv, t)),
        (is_namedtuple, lambda t: _fixed_out(conv, namedtuple_types(t))),
        (is_union, lambda t: union_out(conv, user, t)),
        (lambda t: isinstance(t, type) and issubclass(t, Enum), lambda t: _enum_out(conv, t)),
    ]
    for predicate, out_factory in outs:
        conv.register_unstructure_hook_factory(predicate, out_factory)
    return conv
