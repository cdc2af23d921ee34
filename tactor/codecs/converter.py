"""Builds the cattrs converters behind :class:`~tactor.codecs.json.JsonCodec`.

Each codec owns two converters with the same rules: a fast one for the normal
path and a detailed one, run only after a decode failed, whose exception
groups carry the path of every problem. cattrs' stock hooks are lenient
(``int(value)``): leaf hooks come strict from the codec, and containers, keys,
unions and records check the JSON type of the value first. cattrs' global
converter is never touched.
"""

from __future__ import annotations

from collections import abc
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any, Literal, cast, get_args, get_origin

import attrs
from cattrs import Converter
from cattrs.dispatch import _DispatchNotFound
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.fns import identity
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn
from typing_extensions import is_typeddict

from tactor.codecs.jsonschema import (
    LIST_ORIGINS,
    MAP_ORIGINS,
    SET_ORIGINS,
    TAG,
    NoneType,
    SchemaWalker,
    UserSchemas,
    is_namedtuple,
    is_union,
    key_rule,
    namedtuple_types,
    record_fields,
    record_origin,
    strip,
    type_name,
    union_tags,
)

__all__ = ["In", "Out", "WireClasses", "WireError", "build_converter", "mismatch", "show"]

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


def _choices(values: list[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:6])
    return f"one of {shown}, ..." if len(values) > 6 else f"one of {shown}"


def _values_in(label: str, pairs: list[tuple[Any, Any]]) -> In:
    """A hook accepting exactly the wire values of ``pairs`` (wire value, result)."""
    # Keyed by (class, value): True == 1 and 1.0 == 1, but JSON tells them apart.
    table = {(raw.__class__, raw): result for raw, result in pairs}
    for raw, result in pairs:
        if raw.__class__ is float and raw.is_integer():
            table.setdefault((int, int(raw)), result)  # JSON may write 1.0 as 1
    expected = f"{label} ({_choices([raw for raw, _ in pairs])})"

    def structure_value(value: Any, _: Any) -> Any:
        try:
            return table[(value.__class__, value)]
        except (KeyError, TypeError):
            raise WireError(f"expected {expected}, got {show(value)}") from None

    return structure_value


def _literal_in(tp: Any) -> In:
    return _values_in("Literal", [(a.value if isinstance(a, Enum) else a, a) for a in get_args(tp)])


def _enum_in(tp: type[Enum]) -> In:
    return _values_in(tp.__name__, [(m.value, m) for m in tp])


def _late_in(conv: Converter, tp: Any) -> In:
    try:
        return conv.get_structure_hook(tp)
    except RecursionError:
        # tp is a record whose hook is being generated right now (a recursive
        # type): look its hook up when called instead.
        return lambda value, _: conv.structure(value, tp)


def _late_out(conv: Converter, tp: Any) -> Out:
    try:
        return conv.get_unstructure_hook(tp)
    except RecursionError:
        return lambda value: conv.unstructure(value, unstructure_as=tp)


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


def _seq_in(conv: Converter, tp: Any) -> In:
    origin, args = get_origin(tp), get_args(tp)
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return _fixed_in(conv, tp, list(args), tuple)
    elem, label, detailed = args[0], type_name(tp), conv.detailed_validation
    hook, build = _late_in(conv, elem), _BUILDERS.get(origin, list)

    def structure_seq(value: Any, _: Any) -> Any:
        if value.__class__ is not list:
            raise mismatch(label, value)
        if detailed:
            out = _gather(tp, ((i, item, hook, elem) for i, item in enumerate(value)))
        else:
            out = [hook(item, elem) for item in value]
        return out if build is list else build(out)

    return structure_seq


def _fixed_in(conv: Converter, tp: Any, types: list[Any], build: Callable[..., Any]) -> In:
    """A hook for a fixed-length array (``tuple[A, B]``, NamedTuple) built by ``build``."""
    hooks = [(_late_in(conv, t), t) for t in types]
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


def _map_in(conv: Converter, tp: Any) -> In:
    key_type, val_type = get_args(tp)
    rule, hook, label = key_rule(key_type), _late_in(conv, val_type), type_name(tp)
    parse, key_error, detailed = rule.parse, f"expected {rule.name} key", conv.detailed_validation

    def key(raw: Any) -> Any:
        if raw.__class__ is str:
            try:
                return parse(raw)
            except Exception:  # each rule raises its own kind (ValueError, KeyError)
                pass
        raise WireError(key_error)

    def entry(item: tuple[Any, Any], _: Any) -> tuple[Any, Any]:
        return key(item[0]), hook(item[1], val_type)

    def structure_map(value: Any, _: Any) -> dict[Any, Any]:
        if value.__class__ is not dict:
            raise mismatch(label, value)
        if detailed:
            return dict(_gather(tp, ((k, (k, v), entry, tp) for k, v in value.items())))
        # JSON keys are always str: only other rules need a call per key.
        if parse is str:
            return {
                k if k.__class__ is str else key(k): hook(v, val_type) for k, v in value.items()
            }
        return {key(k): hook(v, val_type) for k, v in value.items()}

    return structure_map


def _object_in(label: str, inner: In) -> In:
    def structure_object(value: Any, tp: Any) -> Any:
        if value.__class__ is not dict:
            raise mismatch(label, value)
        return inner(value, tp)

    return structure_object


def _record_in(conv: Converter, tp: Any) -> In:
    cls = cast(type, record_origin(tp))
    if attrs.has(cls):
        attrs.resolve_types(cls)  # string annotations
    # A RecursionError from here is how cattrs spots recursive records: let it through.
    inner = make_dict_structure_fn(tp, conv)
    if not conv.detailed_validation and any(f.required for f in record_fields(tp)):
        return inner  # its o["field"] fails on any non-object: no need to check first
    return _object_in(type_name(tp), inner)


def _record_out(conv: Converter, tp: Any) -> Out:
    cls = cast(type, record_origin(tp))
    if attrs.has(cls):
        attrs.resolve_types(cls)
    try:
        return make_dict_unstructure_fn(tp, conv)
    except RecursionError:
        # cattrs is generating this class already (a recursive or nested generic
        # type, e.g. Box[Box[int]]); left to cattrs, the value would go out by its
        # runtime class and lose the declared type. Generate at the first call.
        hooks: list[Out] = []

        def unstructure_later(value: Any) -> Any:
            if not hooks:
                hooks.append(make_dict_unstructure_fn(tp, conv))
            return hooks[0](value)

        return unstructure_later


#: For a union member, the classes its JSON value may have (None: any) and a
#: try-order rank (lower first) among members sharing a class.
WireClasses = Callable[[SchemaWalker, Any], tuple["frozenset[type] | None", int]]


def _union_in(conv: Converter, user: UserSchemas, wire_classes: WireClasses, tp: Any) -> In:
    """Route a value by its JSON type; several records travel tagged with ``$type``."""
    tags = union_tags(tp, lambda cls: user(cls) is not None)
    args = get_args(tp)
    if not conv.detailed_validation and len(args) == 2 and NoneType in args:
        # X | None: the fast path may leave the "expected X | None" message to the detailed one.
        other = args[0] if args[1] is NoneType else args[1]
        hook = _late_in(conv, other)
        return lambda value, _: None if value is None else hook(value, other)
    walker = SchemaWalker(user)
    members = [m for m in get_args(tp) if not any(m is t for t in tags.values())]
    shaped = sorted(((wire_classes(walker, m), m) for m in members), key=lambda p: p[0][1])
    routes: dict[type, list[tuple[Any, In]]] = {}
    anywhere: list[tuple[Any, In]] = []
    for (classes, _), member in shaped:
        route = (member, _late_in(conv, member))
        for cls in classes or ():
            routes.setdefault(cls, []).append(route)
        if classes is None:
            anywhere.append(route)
    for candidates in routes.values():
        candidates.extend(anywhere)
    router = _tag_router(conv, tags) if tags else None
    if router is not None and dict not in routes:
        routes[dict] = [(tp, lambda value, _: router(value))]  # says the tag is missing
    return _union_hook(type_name(tp), routes, anywhere, router)


def _union_hook(
    label: str,
    routes: dict[type, list[tuple[Any, In]]],
    anywhere: list[tuple[Any, In]],
    router: Callable[[dict[str, Any]], Any] | None,
) -> In:
    def structure_union(value: Any, _: Any) -> Any:
        if router is not None and value.__class__ is dict and TAG in value:
            return router(value)
        candidates = routes.get(value.__class__, anywhere)
        if len(candidates) == 1:  # the only fit: its own errors say most
            member, hook = candidates[0]
            return hook(value, member)
        for member, hook in candidates:
            try:
                return hook(value, member)
            except RecursionError:
                raise
            except Exception:  # the next member may fit
                continue
        raise mismatch(label, value)

    return structure_union


def _tag_router(conv: Converter, tags: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
    hooks = {tag: (member, _late_in(conv, member)) for tag, member in tags.items()}
    expected = _choices(list(tags))

    def route_tagged(value: dict[str, Any]) -> Any:
        tag = value.get(TAG)
        entry = hooks.get(tag) if tag.__class__ is str else None
        if entry is None:
            what = f"unknown {TAG} {show(tag)}" if TAG in value else f"missing {TAG}"
            raise WireError(f"{what}: expected {expected}")
        return entry[1](value, entry[0])

    return route_tagged


_CONCRETE: dict[Any, tuple[type, ...]] = {
    **{abc.Sequence: (list, tuple, abc.Sequence), abc.MutableSequence: (list, abc.MutableSequence)},
    **{abc.Set: (set, frozenset, abc.Set), abc.MutableSet: (set, abc.MutableSet)},
    **{abc.Mapping: (dict, abc.Mapping), abc.MutableMapping: (dict, abc.MutableMapping)},
    float: (float, int),  # an int is a fine value for a float
}


def _runtime_classes(member: Any) -> tuple[Any, ...]:
    base = strip(member)
    if get_origin(base) is Literal:
        return tuple({type(a) for a in get_args(base)})
    origin = get_origin(base) or base
    return (dict,) if is_typeddict(origin) else _CONCRETE.get(origin, (origin,))


def _union_out(conv: Converter, user: UserSchemas, tp: Any) -> Out:
    """Pick the member by the value's class; tagged records get their ``$type``."""
    tag_of = {id(m): t for t, m in union_tags(tp, lambda cls: user(cls) is not None).items()}
    exact: dict[type, Out] = {}
    scan: list[tuple[type, Out]] = []
    for member in get_args(tp):
        hook = _late_out(conv, member)
        if id(member) in tag_of:
            hook = _tagging(hook, tag_of[id(member)])
        for cls in _runtime_classes(member):
            exact.setdefault(cls, hook)
            scan.append((cls, hook))
    if not tag_of and all(hook is identity for hook in exact.values()):
        return identity  # e.g. str | None: cattrs inlines identity into its generated code
    label = type_name(tp)

    def unstructure_union(value: Any) -> Any:
        hook = exact.get(value.__class__)
        if hook is None:
            hook = next((h for cls, h in scan if isinstance(value, cls)), None)
            if hook is None:
                raise TypeError(f"a {type(value).__name__} value does not fit {label}")
        return hook(value)

    return unstructure_union


def _tagging(hook: Out, tag: str) -> Out:
    return lambda value: {TAG: tag, **hook(value)}


def _seq_out(conv: Converter, tp: Any) -> Out:
    args = get_args(tp)
    if get_origin(tp) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return _fixed_out(conv, list(args))
    hook = _late_out(conv, args[0])
    # JSON has only arrays: tuples and sets go out as lists.
    return list if hook is identity else lambda value: [hook(item) for item in value]


def _fixed_out(conv: Converter, types: list[Any]) -> Out:
    hooks = [_late_out(conv, t) for t in types]
    return lambda value: [hook(item) for hook, item in zip(hooks, value, strict=True)]


def _map_out(conv: Converter, tp: Any) -> Out:
    key_type, val_type = get_args(tp)
    dump, hook = key_rule(key_type).dump, _late_out(conv, val_type)
    if dump is None:
        return dict if hook is identity else lambda value: {k: hook(v) for k, v in value.items()}
    return lambda value: {dump(k): hook(v) for k, v in value.items()}


#: cattrs consults its per-class table before any predicate hook, and its
#: defaults put lenient int/float/str/bytes hooks there that would also catch
#: IntEnum and StrEnum. This marker makes that table say "not here".
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
    leaves_in: abc.Mapping[Any, In],
    leaves_out: abc.Mapping[Any, Out],
    wire_classes: WireClasses,
    *,
    detailed: bool,
) -> Converter:
    """A converter with tactor's rules for containers, keys, unions, records and enums.

    ``leaves_in``/``leaves_out`` are the exact-type hooks for leaf types (a
    type without an out hook is passed through); ``wire_classes`` routes union
    members; ``user`` finds registered types' schemas; ``detailed`` selects
    cattrs' detailed validation.
    """
    conv = Converter(detailed_validation=detailed)
    for leaf in (int, float, str, bytes):
        conv.register_structure_hook(leaf, _NOT_HERE)
    for out_leaf in (str, bytes):
        conv.register_unstructure_hook(out_leaf, _NOT_HERE)
    ins: list[tuple[Callable[[Any], bool], Callable[[Any], In]]] = [
        (lambda t: t in leaves_in, lambda t: leaves_in[t]),
        (lambda t: get_origin(t) is Literal, _literal_in),
        (lambda t: isinstance(t, type) and issubclass(t, Enum), _enum_in),
        (_is_seq, lambda t: _seq_in(conv, t)),
        (_is_map, lambda t: _map_in(conv, t)),
        (lambda t: record_origin(t) is not None, lambda t: _record_in(conv, t)),
        (is_typeddict, lambda t: _object_in(type_name(t), conv.gen_structure_typeddict(t))),
        (is_namedtuple, lambda t: _fixed_in(conv, t, namedtuple_types(t), lambda a: t(*a))),
        (is_union, lambda t: _union_in(conv, user, wire_classes, t)),
    ]
    for predicate, factory in ins:
        conv.register_structure_hook_factory(predicate, factory)
    outs: list[tuple[Callable[[Any], bool], Callable[[Any], Out]]] = [
        (lambda t: t in leaves_out, lambda t: leaves_out[t]),
        (_is_seq, lambda t: _seq_out(conv, t)),
        (_is_map, lambda t: _map_out(conv, t)),
        (lambda t: record_origin(t) is not None, lambda t: _record_out(conv, t)),
        (is_namedtuple, lambda t: _fixed_out(conv, namedtuple_types(t))),
        (is_union, lambda t: _union_out(conv, user, t)),
    ]
    for predicate, out_factory in outs:
        conv.register_unstructure_hook_factory(predicate, out_factory)
    return conv
