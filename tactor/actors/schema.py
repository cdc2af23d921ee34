"""Marshalling schemas made from an actor class's type hints, at class definition.

Each public ``async def`` of an :class:`~tactor.Actor` subclass becomes a
:class:`MethodSchema`: its parameters become a generated dataclass (so
argument decoding validates with readable paths such as ``items[0].qty``) and
its return hint the result type. ``@subscribe`` methods become
:class:`HandlerSchema`. Everything is checked here, so a bad hint fails when
the class is defined, naming the class, the method and the parameter.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..codecs import Codec, JsonCodec
from ..errors import EncodeError, SchemaError
from ..transports.topics import check_pattern
from .events import event_types, topic_of

__all__ = [
    "MISSING",
    "ActorSchema",
    "HandlerSchema",
    "MethodSchema",
    "build_schema",
    "constructor_schema",
]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
#: Lifecycle hooks every actor has; never endpoint methods.
HOOKS = frozenset({"on_start", "on_stop"})


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class _Missing:
    """Default of an argument the caller did not send: the method's own default applies."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@cache
def definition_codec() -> Codec:
    """The codec that checks hints at class definition (never given user types)."""
    return JsonCodec()


@dataclass(frozen=True, slots=True)
class MethodSchema:
    """One endpoint method: how to encode its arguments and decode its result."""

    owner: type
    name: str
    function: Callable[..., Any]
    signature: inspect.Signature
    hints: Mapping[str, Any]
    args_type: type
    result_type: Any
    positional: tuple[str, ...]  # positional-only parameters, passed positionally
    custom_types: frozenset[type]
    # For the common call with positional arguments only: the parameters that
    # may be given by position, with their hints, and how many must be.
    by_position: tuple[tuple[str, Any], ...] = ()
    required_positions: int = 0
    keyword_only_required: bool = False
    fields: tuple[str, ...] = ()
    #: Known only by name (no interface class here): arguments go as JSON data,
    #: positional ones by position, and the result comes back as JSON data.
    untyped: bool = False

    def encode(
        self, codec: Codec, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], list[Any] | None]:
        """Named wire arguments, and positional ones for an untyped method."""
        if self.untyped:
            named = {name: codec.to_wire_any(value) for name, value in kwargs.items()}
            return named, [codec.to_wire_any(value) for value in args]
        return self.encode_args(codec, args, kwargs), None

    @property
    def qualname(self) -> str:
        return member_name(self.owner, self.name, module=False)

    def encode_args(self, codec: Codec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Bind a call's arguments and return their wire form.

        Raises ``TypeError`` for arguments that do not bind, ``EncodeError``
        for values that cannot be encoded.
        """
        if (
            not kwargs
            and self.required_positions <= len(args) <= len(self.by_position)
            and not self.keyword_only_required
        ):
            to_wire, pairs = codec.to_wire, zip(self.by_position, args, strict=False)
            try:  # the common call: positional arguments only
                return {name: to_wire(v, hint) for (name, hint), v in pairs}
            except EncodeError:
                pass  # encode again, one by one, to name the argument
            again = zip(self.by_position, args, strict=False)
            items: Any = ((name, hint, value) for (name, hint), value in again)
        else:
            try:
                bound = self.signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{self.qualname}(): {exc}") from None
            items = ((n, self.hints[n], v) for n, v in bound.arguments.items())
        wire: dict[str, Any] = {}
        for name, hint, value in items:
            try:
                wire[name] = codec.to_wire(value, hint)
            except EncodeError as exc:
                raise EncodeError(f"{self.qualname}: argument {name!r}: {exc}") from exc
        return wire

    def call_args(self, decoded: Any) -> tuple[list[Any], dict[str, Any]]:
        """Split a decoded arguments object into positional and keyword arguments."""
        if not self.positional:
            return [], {
                name: value
                for name in self.fields
                if (value := getattr(decoded, name)) is not MISSING
            }
        positional = [getattr(decoded, n) for n in self.positional]
        keywords = {
            name: value
            for name in self.fields
            if name not in self.positional and (value := getattr(decoded, name)) is not MISSING
        }
        return [v for v in positional if v is not MISSING], keywords

    def params_schema(self, codec: Codec) -> dict[str, Any]:
        """The JSON Schema of the arguments object, inlined at the root."""
        schema = codec.json_schema(self.args_type)
        ref = schema.pop("$ref", "")
        defs: dict[str, Any] = schema.pop("$defs", {})
        root = defs.pop(ref.rpartition("/")[2], {}) if ref else schema
        root = {**root, "title": f"{self.qualname} parameters"}
        return {**root, "$defs": defs} if defs else root

    def result_schema(self, codec: Codec) -> dict[str, Any]:
        return codec.json_schema(self.result_type)


@dataclass(frozen=True, slots=True)
class HandlerSchema:
    """One ``@subscribe`` method: the event types it takes and the patterns it listens on."""

    name: str
    function: Callable[..., Any]
    event_type: Any
    by_name: Mapping[str, type]
    patterns: tuple[str, ...]
    custom_types: frozenset[type]

    def decode_type(self, type_name: str) -> Any:
        """The type to decode an event of ``type_name`` as, for this handler."""
        return self.by_name.get(type_name, self.event_type)


@dataclass(frozen=True, slots=True)
class ActorSchema:
    """Everything the runtime needs to serve and call one actor class."""

    cls: type
    endpoint: str
    methods: Mapping[str, MethodSchema]
    handlers: tuple[HandlerSchema, ...]
    errors: Mapping[str, type[BaseException]]

    @property
    def custom_types(self) -> frozenset[type]:
        found: set[type] = set()
        for m in self.methods.values():
            found |= m.custom_types
        for h in self.handlers:
            found |= h.custom_types
        return frozenset(found)

    def json_schema(self, codec: Codec | None = None) -> dict[str, Any]:
        """The JSON Schema of every endpoint method (``{"methods": {name: {"params",
        "result"}}}``) and of every event handler (``{"events": {name: {"topics",
        "event"}}}``: the topic patterns it listens on, the schema of what it takes)."""
        codec = codec or definition_codec()
        return {
            "endpoint": self.endpoint,
            "methods": {
                name: {"params": m.params_schema(codec), "result": m.result_schema(codec)}
                for name, m in self.methods.items()
            },
            "events": {
                h.name: {"topics": list(h.patterns), "event": codec.json_schema(h.event_type)}
                for h in self.handlers
            },
        }


def served_function(owner: Any) -> Any:
    """The user's function that ``owner`` serves (see ``function_actor``), or None."""
    fn = getattr(owner, "__tactor_function__", None)
    return getattr(fn, "__func__", fn)


def member_name(owner: Any, where: str, *, module: bool = True) -> str:
    """How messages name ``owner.where``: ``pkg.Pricing.quote(items)``.

    A function served as an endpoint is named as the user wrote it
    (``pkg.product(a)``), not as the class that serves it (``Remote_product.call``).
    """
    fn = served_function(owner)
    if fn is not None:
        owner, where = fn, where.removeprefix("call").removeprefix(".")
        name = f"{owner.__qualname__}{where}"
    else:
        name = f"{owner.__qualname__}.{where}"
    return f"{owner.__module__}.{name}" if module else name


def _fail(owner: Any, where: str, problem: str) -> SchemaError:
    """A SchemaError naming the class (or function), the method and the parameter."""
    return SchemaError(f"{member_name(owner, where)}: {problem}")


def _check_type(owner: Any, where: str, tp: Any) -> frozenset[type]:
    """Check that the codec can marshal ``tp``; return the user classes that need a codec."""
    custom: set[type] = set()

    def defer(unknown: type) -> dict[str, Any]:
        custom.add(unknown)
        return {}

    try:
        definition_codec().json_schema(tp, on_unknown=defer)
    except SchemaError as exc:
        raise _fail(owner, where, str(exc)) from None
    return frozenset(custom)


def _hints(owner: Any, fn: Callable[..., Any], name: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # NameError for unresolved forward references, and the like
        raise _fail(owner, name, f"cannot resolve type hints ({exc})") from None


def _method_schema(
    cls: type, name: str, fn: Callable[..., Any], *, returns: bool = True
) -> MethodSchema:
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())[1:]  # drop self
    hints = _hints(cls, fn, name)
    fields: list[tuple[str, Any, Any]] = []
    custom: set[type] = set()
    for p in params:
        where = f"{name}({p.name})"
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise _fail(cls, where, "*args and **kwargs cannot be marshalled; name each parameter")
        if p.name not in hints:
            raise _fail(cls, where, "parameter has no type hint")
        custom |= _check_type(cls, where, hints[p.name])
        default = MISSING if p.default is not p.empty else dataclasses.MISSING
        fields.append((p.name, hints[p.name], dataclasses.field(default=default)))
    if "return" not in hints and returns:
        raise _fail(cls, name, "no return type hint (write '-> None' if it returns nothing)")
    result_type = hints.get("return")
    custom |= _check_type(cls, f"{name} -> return", result_type)
    args_type = dataclasses.make_dataclass(
        f"{cls.__name__}_{name}_args", fields, kw_only=True, slots=True
    )
    args_type.__module__ = cls.__module__
    return MethodSchema(
        owner=cls,
        name=name,
        function=fn,
        signature=signature.replace(parameters=params),
        hints={p.name: hints[p.name] for p in params},
        args_type=args_type,
        result_type=result_type,
        positional=tuple(p.name for p in params if p.kind is p.POSITIONAL_ONLY),
        custom_types=frozenset(custom),
        by_position=tuple((p.name, hints[p.name]) for p in params if p.kind in _POSITIONAL),
        required_positions=sum(1 for p in params if p.kind in _POSITIONAL and p.default is p.empty),
        keyword_only_required=any(
            p.kind is p.KEYWORD_ONLY and p.default is p.empty for p in params
        ),
        fields=tuple(p.name for p in params),
    )


def constructor_schema(cls: type) -> MethodSchema:
    """The schema of ``cls(...)``'s arguments, to send them to another process.

    Raises :class:`SchemaError` for a parameter without a type hint, or one that
    cannot be marshalled, naming it.
    """
    init = cls.__dict__.get("__init__") or getattr(cls, "__init__")  # noqa: B009
    if init is object.__init__:
        init = _takes_nothing
    return _method_schema(cls, "__init__", init, returns=False)


def _takes_nothing(self: object) -> None:
    """The constructor of a class that defines none."""


def _handler_schema(
    owner: Any, name: str, fn: Callable[..., Any], *, skip_self: bool = True
) -> HandlerSchema:
    params = list(inspect.signature(fn).parameters.values())[1 if skip_self else 0 :]
    if len(params) != 1 or params[0].kind in (params[0].VAR_POSITIONAL, params[0].VAR_KEYWORD):
        raise _fail(owner, name, "an event handler takes exactly one parameter: the event")
    hints = _hints(owner, fn, name)
    event_param = params[0].name
    if event_param not in hints:
        raise _fail(owner, f"{name}({event_param})", "the event parameter has no type hint")
    event_type = hints[event_param]
    custom = _check_type(owner, f"{name}({event_param})", event_type)
    classes = event_types(event_type)
    patterns: tuple[str, ...] = getattr(fn, "__tactor_patterns__", ())
    if not patterns:
        if not classes:
            raise _fail(owner, name, "subscribe to an event class, or give a topic pattern")
        patterns = tuple(dict.fromkeys(topic_of(c) for c in classes))
    return HandlerSchema(
        name=name,
        function=fn,
        event_type=event_type,
        by_name={c.__name__: c for c in classes},
        patterns=patterns,
        custom_types=custom,
    )


class _Untyped:
    """The stand-in owner of methods known only by endpoint name."""


def untyped_method(endpoint: str, name: str) -> tuple[ActorSchema, MethodSchema]:
    """A schema for calling ``endpoint.name`` without its interface class."""
    signature = inspect.Signature(
        [
            inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
            inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
        ]
    )
    method = MethodSchema(
        owner=_Untyped,
        name=name,
        function=lambda *args, **kwargs: None,
        signature=signature,
        hints={},
        args_type=dict,
        result_type=Any,
        positional=(),
        custom_types=frozenset(),
        untyped=True,
    )
    schema = ActorSchema(
        cls=_Untyped, endpoint=endpoint, methods={name: method}, handlers=(), errors={}
    )
    return schema, method


def handler_for_function(fn: Callable[..., Any], pattern: str | None) -> HandlerSchema:
    """The schema of a plain ``async def handler(event: T)`` given to ``system.subscribe``."""
    if not inspect.iscoroutinefunction(fn):
        raise SchemaError(f"{fn.__qualname__}: event subscribers must be 'async def' functions")
    schema = _handler_schema(fn, "handler", fn, skip_self=False)
    if pattern is not None:
        schema = dataclasses.replace(schema, patterns=(check_pattern(pattern),))
    return schema


def _is_public_callable(value: Any) -> bool:
    return isinstance(value, staticmethod | classmethod | types.FunctionType)


def build_schema(
    cls: type, base: type, endpoint: str, errors: tuple[type[BaseException], ...]
) -> ActorSchema:
    """Build and check the schema of ``cls`` (an actor class whose root is ``base``)."""
    if not _NAME.match(endpoint):
        raise _fail(cls, "name", f"endpoint name {endpoint!r} must be letters, digits, _ . -")
    methods: dict[str, MethodSchema] = {}
    handlers: dict[str, HandlerSchema] = {}
    for klass in reversed(cls.__mro__[: cls.__mro__.index(base)]):
        for name, value in vars(klass).items():
            if name.startswith("_") or name in HOOKS:
                continue
            if getattr(value, "__tactor_subscribe__", False):
                handlers[name] = _handler_schema(cls, name, value)
                methods.pop(name, None)
            elif inspect.iscoroutinefunction(value):
                methods[name] = _method_schema(cls, name, value)
                handlers.pop(name, None)
            elif _is_public_callable(value):
                raise _fail(
                    cls, name, "public methods must be 'async def'; prefix helpers with '_'"
                )
    for bad in errors:
        if not (isinstance(bad, type) and issubclass(bad, Exception)):
            raise _fail(cls, "errors", f"{bad!r} is not an Exception class")
    return ActorSchema(
        cls=cls,
        endpoint=endpoint,
        methods=methods,
        handlers=tuple(handlers.values()),
        errors={e.__qualname__: e for e in errors},
    )
