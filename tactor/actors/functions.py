"""Plain functions as endpoints, and stubs that call them by callable or by name.

``function_actor(fn, name)`` makes an :class:`Actor` class with one endpoint
method, ``call``, whose schema is ``fn``'s signature and hints — so a function
is served exactly like an actor method (checked at definition, typed on the
wire, one call at a time per provider). A plain ``def`` runs in a worker
thread so it does not block the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import types
import typing
from collections.abc import Callable
from typing import Any

from ..errors import SchemaError
from .actor import Actor, schema_of
from .schema import ActorSchema, MethodSchema, untyped_method

__all__ = ["as_async", "endpoint_name", "function_actor", "resolve"]

_INVALID = re.compile(r"[^A-Za-z0-9_.\-]")
#: Function endpoints known in this process, by endpoint name and by function.
_BY_NAME: dict[str, type[Actor]] = {}
_BY_FUNCTION: dict[Callable[..., Any], type[Actor]] = {}


def endpoint_name(fn: Callable[..., Any]) -> str:
    """The endpoint a function is served on by default: its module and qualified name."""
    target = getattr(fn, "__func__", fn)
    return _INVALID.sub("_", f"{target.__module__}.{target.__qualname__}")


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(getattr(fn, "__func__", fn), include_extras=True)
    except Exception as exc:
        raise SchemaError(f"{fn!r}: cannot resolve type hints ({exc})") from None


def as_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` itself if it is ``async def``; else an async wrapper running it in a worker thread."""
    if inspect.iscoroutinefunction(fn):
        return fn

    @functools.wraps(fn)
    async def run_in_thread(*args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    run_in_thread.__annotations__ = _hints(fn)  # resolved where fn was defined
    return run_in_thread


def _is_unbound_method(fn: Callable[..., Any]) -> bool:
    """``Class.method`` taken from the class: a function defined in a class, taking ``self``."""
    if not isinstance(fn, types.FunctionType):
        return False  # a bound method, a partial, ...
    container, dot, _ = fn.__qualname__.rpartition(".")
    if not dot or container.endswith("<locals>"):
        return False  # a module-level or nested function
    params = list(inspect.signature(fn).parameters)
    return bool(params) and params[0] == "self"


def function_actor(
    fn: Callable[..., Any], name: str | None = None, *, serving: bool = False
) -> type[Actor]:
    """An actor class serving ``fn`` (a function or bound method) as its ``call`` method.

    ``Class.method`` (unbound) describes the endpoint its bound methods serve:
    its schema leaves ``self`` out. Serving one (``serving=True``) is a
    ``SchemaError``: expose ``instance.method``.
    """
    endpoint = name or endpoint_name(fn)
    unbound = _is_unbound_method(fn)
    if unbound and serving:
        raise SchemaError(
            f"{fn.__module__}.{fn.__qualname__} is a method taken from its class: "
            "expose a bound method (instance.method) instead"
        )
    known = _BY_NAME.get(endpoint)
    if known is not None and known.__tactor_function__ == fn:  # type: ignore[attr-defined]
        return known  # (bound methods are made anew at each access, so ==, not is)
    run = as_async(fn)
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())[1 if unbound else 0 :]

    async def call(self: Actor, *args: Any, **kwargs: Any) -> Any:
        return await run(*args, **kwargs)

    # A name no user parameter has, so a method's own 'self' cannot clash with it.
    self_param = inspect.Parameter("__tactor_self", inspect.Parameter.POSITIONAL_ONLY)
    call.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self_param, *params]
    )
    call.__annotations__ = _hints(fn)
    call.__doc__ = fn.__doc__
    label = re.sub(r"\W", "_", getattr(fn, "__qualname__", "function"))  # an identifier

    def body(namespace: dict[str, Any]) -> None:
        namespace.update(call=call, __module__=fn.__module__, __tactor_function__=fn)

    cls = types.new_class(f"Remote_{label}", (Actor,), {"name": endpoint}, body)
    _BY_NAME[endpoint] = cls
    _BY_FUNCTION[fn] = cls  # bound methods compare and hash by (function, instance)
    bound_to = getattr(fn, "__func__", None)
    if bound_to is not None:
        _BY_FUNCTION.setdefault(bound_to, cls)  # so stub(Class.method) finds it too
    return cls


def resolve(target: Callable[..., Any] | str) -> tuple[ActorSchema, MethodSchema]:
    """The schema to call ``target`` with: a function, an endpoint name, or an actor method."""
    if isinstance(target, str):
        cls = _BY_NAME.get(target)
        if cls is None:
            return untyped_method(target, "call")  # known only by name: JSON in, JSON out
    elif getattr(getattr(target, "__func__", target), "__tactor_owner__", None) is not None:
        from .actor import method_of

        return method_of(target)
    else:
        cls = _BY_FUNCTION.get(target) or function_actor(target)
    schema = schema_of(cls)
    return schema, schema.methods["call"]
