"""Typed stub proxies: one generated class per actor class, one bound call per method."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .schema import ActorSchema, MethodSchema

__all__ = ["CallFn", "Proxy", "proxy_class"]


class CallFn(Protocol):
    def __call__(
        self,
        schema: ActorSchema,
        method: MethodSchema,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        timeout: float | None,
        provider: str | None,
    ) -> Awaitable[Any]: ...


class Proxy:
    """Base of generated proxies. Each endpoint method becomes an ``async def`` that calls it."""

    __slots__ = ("_call", "_provider", "_timeout")
    _schema: ActorSchema

    def __init__(self, call: CallFn, *, timeout: float | None, provider: str | None) -> None:
        self._call = call
        self._timeout = timeout
        self._provider = provider

    def __repr__(self) -> str:
        target = f" provider={self._provider!r}" if self._provider else ""
        return f"<proxy {self._schema.cls.__qualname__} endpoint={self._schema.endpoint!r}{target}>"

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"{self._schema.cls.__qualname__} proxy has no endpoint method {name!r}; "
            "proxies offer only the public async methods of the actor class"
        )


def _bound_call(schema: ActorSchema, method: MethodSchema) -> Callable[..., Awaitable[Any]]:
    async def call(self: Proxy, *args: Any, **kwargs: Any) -> Any:
        return await self._call(
            schema, method, args, kwargs, timeout=self._timeout, provider=self._provider
        )

    call.__name__ = method.name
    call.__qualname__ = f"{schema.cls.__qualname__}Proxy.{method.name}"
    call.__doc__ = method.function.__doc__
    call.__signature__ = method.signature  # type: ignore[attr-defined]
    call.__tactor_owner__ = schema.cls  # type: ignore[attr-defined]  # system.call(proxy.m) works
    return call


def proxy_class(schema: ActorSchema) -> type[Proxy]:
    """The proxy class of an actor class, made once and kept on the class."""
    cached: type[Proxy] | None = schema.cls.__dict__.get("__tactor_proxy__")
    if cached is not None:
        return cached
    namespace: dict[str, Any] = {name: _bound_call(schema, m) for name, m in schema.methods.items()}
    namespace.update(__slots__=(), _schema=schema)
    cls = type(f"{schema.cls.__name__}Proxy", (Proxy,), namespace)
    schema.cls.__tactor_proxy__ = cls  # type: ignore[attr-defined]
    return cls
