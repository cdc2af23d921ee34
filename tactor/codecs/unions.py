"""Union hooks: a value picks its member by its JSON type (in) or its class (out).

Several records in one union travel tagged with ``$type``; see
:func:`tactor.codecs.jsonschema.union_tags`.
"""

from __future__ import annotations

from collections import abc
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

from cattrs import Converter
from cattrs.fns import identity
from typing_extensions import is_typeddict

from tactor.codecs.jsonschema import (
    TAG,
    NoneType,
    SchemaWalker,
    UserSchemas,
    strip,
    type_name,
    union_tags,
)
from tactor.codecs.wire import (
    In,
    Maybe,
    Out,
    WireConverter,
    WireError,
    choices,
    late_in,
    late_out,
    mismatch,
    show,
)

__all__ = ["WireClasses", "union_in", "union_out"]

#: For a union member, the classes its JSON value may have (None: any) and a
#: try-order rank (lower first) among members sharing a class.
WireClasses = Callable[[SchemaWalker, Any], tuple["frozenset[type] | None", int]]


def union_in(conv: WireConverter, user: UserSchemas, wire_classes: WireClasses, tp: Any) -> In:
    """Route a value by its JSON type; several records travel tagged with ``$type``."""
    tags = union_tags(tp, lambda cls: user(cls) is not None)
    args = get_args(tp)
    if not conv.detailed_validation and len(args) == 2 and NoneType in args:
        # X | None: the fast path may leave the "expected X | None" message to the detailed one.
        other = args[0] if args[1] is NoneType else args[1]
        hook = late_in(conv, other)

        def structure_optional(value: Any, _: Any) -> Any:
            return None if value is None else hook(value, other)

        conv.shapes[structure_optional] = Maybe(hook, other)
        return structure_optional
    walker = SchemaWalker(user)
    members = [m for m in get_args(tp) if not any(m is t for t in tags.values())]
    shaped = sorted(((wire_classes(walker, m), m) for m in members), key=lambda p: p[0][1])
    routes: dict[type, list[tuple[Any, In]]] = {}
    anywhere: list[tuple[Any, In]] = []
    for (classes, _), member in shaped:
        route = (member, late_in(conv, member))
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
    hooks = {tag: (member, late_in(conv, member)) for tag, member in tags.items()}
    expected = choices(list(tags))

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


def union_out(conv: Converter, user: UserSchemas, tp: Any) -> Out:
    """Pick the member by the value's class; tagged records get their ``$type``."""
    tag_of = {id(m): t for t, m in union_tags(tp, lambda cls: user(cls) is not None).items()}
    exact: dict[type, Out] = {}
    scan: list[tuple[type, Out]] = []
    for member in get_args(tp):
        hook = late_out(conv, member)
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
