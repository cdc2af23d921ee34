"""The :class:`Actor` base class and :class:`ActorRef`."""

from __future__ import annotations

import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ..errors import NotRunning, SchemaError
from .schema import ActorSchema, MethodSchema, build_schema, served_function

if TYPE_CHECKING:
    from .system import ActorSystem

__all__ = [
    "Actor",
    "ActorRef",
    "actor_name",
    "endpoint_origin",
    "json_schema",
    "kin",
    "method_of",
    "schema_of",
]

A = TypeVar("A", bound="Actor")


class Actor:
    """Base class of every actor. Subclass it; its public ``async def`` methods are its interface.

    ``class Pricing(Actor, name="pricing", errors=(OutOfStock,))``: ``name`` is
    the endpoint (default: the class name; subclasses inherit their parent's),
    ``errors`` the exception types re-raised to callers as themselves. The type
    hints of every public method are checked when the class is defined.
    ``on_start``/``on_stop`` run when the actor is spawned and stopped.
    """

    __tactor_schema__: ClassVar[ActorSchema]
    _tactor_system: ActorSystem | None = None
    _tactor_ref: ActorRef[Any] | None = None

    def __init_subclass__(
        cls,
        *,
        name: str | None = None,
        errors: Sequence[type[BaseException]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        inherited: ActorSchema | None = getattr(cls, "__tactor_schema__", None)
        endpoint = name or (inherited.endpoint if inherited is not None else cls.__name__)
        parent_errors = inherited.errors.values() if inherited is not None else ()
        all_errors = tuple(dict.fromkeys([*parent_errors, *errors]))
        if inherited is not None:
            _own_inherited_methods(cls, inherited)
        schema = cls.__tactor_schema__ = build_schema(cls, Actor, endpoint, all_errors)
        for method in schema.methods.values():
            # A method reference (Pricing.quote) finds its class, and so its endpoint,
            # through this mark; the class that defines the function keeps it.
            if not hasattr(method.function, "__tactor_owner__"):
                method.function.__tactor_owner__ = cls  # type: ignore[attr-defined]

    async def on_start(self) -> None:
        """Called once the actor is spawned, before it receives any message."""

    async def on_stop(self) -> None:
        """Called after the actor handled its last message."""

    @property
    def system(self) -> ActorSystem:
        """The system this actor runs in (only once it is spawned)."""
        if self._tactor_system is None:
            raise NotRunning(f"{type(self).__qualname__} is not spawned in an ActorSystem")
        return self._tactor_system

    @property
    def ref(self) -> ActorRef[Any]:
        """This provider's reference (only once it is spawned)."""
        if self._tactor_ref is None:
            raise NotRunning(f"{type(self).__qualname__} is not spawned in an ActorSystem")
        return self._tactor_ref


def _own_inherited_methods(cls: type, inherited: ActorSchema) -> None:
    """Give ``cls`` its own copy of each endpoint method it inherits without overriding.

    A method reference names its endpoint through the class that owns the
    function: ``Loud.who`` must reach ``Loud``'s endpoint (and use ``Loud``'s
    ``errors=``), not that of the parent it was inherited from. The copy shares
    the parent's code, closure and defaults, so it behaves the same (``super()``
    included); only the owner mark differs.
    """
    for name in inherited.methods:
        if name in vars(cls):
            continue  # overridden here: the new function is this class's own
        original = getattr(cls, name)
        if not isinstance(original, types.FunctionType):
            raise SchemaError(
                f"{cls.__module__}.{cls.__qualname__}.{name}: an inherited endpoint method "
                "that is not a plain function cannot be served by a subclass; override it"
            )
        copy = types.FunctionType(
            original.__code__,
            original.__globals__,
            original.__name__,
            original.__defaults__,
            original.__closure__,
        )
        copy.__kwdefaults__ = original.__kwdefaults__
        copy.__dict__.update(original.__dict__)
        copy.__dict__.pop("__tactor_owner__", None)
        for attribute in ("__qualname__", "__module__", "__doc__", "__annotations__"):
            setattr(copy, attribute, getattr(original, attribute))
        setattr(cls, name, copy)


def schema_of(cls: type[Actor]) -> ActorSchema:
    """The schema of an actor class; raises ``SchemaError`` for anything else."""
    schema = getattr(cls, "__tactor_schema__", None)
    if not isinstance(schema, ActorSchema):
        raise SchemaError(f"{cls!r} is not an Actor subclass")
    return schema


def actor_name(cls: type[Actor]) -> str:
    """``module:Qual.Name`` of an actor class, or of the function it serves (``expose``)."""
    fn = served_function(cls)
    owner = cls if fn is None else fn
    return f"{owner.__module__}:{owner.__qualname__}"


def endpoint_origin(cls: type[Actor]) -> type[Actor]:
    """The class that names ``cls``'s endpoint: its most distant ancestor that serves the
    same endpoint (``cls`` itself when it names an endpoint no ancestor serves).

    Classes of one origin are implementations of one interface (``PricingImpl(Pricing)``,
    or two siblings of it); classes of different origins that share an endpoint name
    were not meant to share it.
    """
    endpoint = schema_of(cls).endpoint
    for klass in reversed(cls.__mro__):
        schema = vars(klass).get("__tactor_schema__")
        if isinstance(schema, ActorSchema) and schema.endpoint == endpoint:
            return klass
    return cls


def kin(origin: str, other: str) -> bool:
    """Whether two endpoint origins (``actor_name`` of ``endpoint_origin``) are one class:
    the same name, or the same qualified name where one was loaded as the script
    (``__main__``), which other processes import by the script's module name."""
    if origin == other:
        return True
    module, _, name = origin.partition(":")
    other_module, _, other_name = other.partition(":")
    return name == other_name and "__main__" in (module, other_module)


@dataclass(frozen=True, slots=True)
class ActorRef(Generic[A]):
    """A spawned provider: its ``id``, its ``endpoint`` and its actor class."""

    id: str
    endpoint: str
    actor_class: type[A]

    def __str__(self) -> str:
        return self.id


def json_schema(cls: type[Actor]) -> dict[str, Any]:
    """The JSON Schema of ``cls``'s interface: ``{"endpoint", "methods": {...}, "events": {...}}``.

    Each method has ``"params"`` (an object schema of its arguments) and
    ``"result"``; each event handler ``"topics"`` (the patterns it listens on)
    and ``"event"``. User types registered only on a system appear as ``{}``.
    """
    return schema_of(cls).json_schema()


def method_of(fn: Any) -> tuple[ActorSchema, MethodSchema]:
    """The schema of a method reference such as ``Pricing.quote``; raises ``TypeError``."""
    fn = getattr(fn, "__func__", fn)
    owner = getattr(fn, "__tactor_owner__", None)
    if owner is None:
        raise TypeError(
            f"{fn!r} is not an endpoint method of an Actor class (pass e.g. Pricing.quote)"
        )
    schema = schema_of(owner)
    return schema, schema.methods[fn.__name__]
