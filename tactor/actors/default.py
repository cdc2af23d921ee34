"""The module-level API over one default system, for scripts and pymq users.

```python
import tactor

@tactor.remote                       # served as "module.product" by every process that inits
def product(a: int, b: int) -> int:
    return a * b

tactor.init("redis://localhost:6379/0")
tactor.stub(product)(2, 4)           # 8, from any live provider
tactor.stub(product, multi=True)(2, 4)   # [8, 8, ...] from every live provider
tactor.shutdown()
```

Registrations made before :func:`init` take effect at ``init``; made after,
at once. Everything here drives one :class:`BlockingSystem`; use
:func:`system` to reach it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from typing import Any, Literal, ParamSpec, TypeVar, overload

from ..errors import NotRunning
from .blocking import BlockingQueue, BlockingSystem
from .functions import as_async, function_actor, resolve
from .schema import handler_for_function

__all__ = [
    "expose",
    "init",
    "publish",
    "queue",
    "remote",
    "shutdown",
    "stub",
    "subscriber",
    "system",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_lock = threading.Lock()
_default: BlockingSystem | None = None
_remotes: dict[str, Callable[..., Any]] = {}
_subscribers: list[tuple[Callable[..., Any], str | None]] = []


def init(transport: str = "memory://", **options: Any) -> BlockingSystem:
    """Start the default system (replacing a running one) and serve what was registered."""
    global _default
    shutdown()
    started = BlockingSystem(transport, **options).start()
    with _lock:
        _default = started
        remotes, subscribers = dict(_remotes), list(_subscribers)
    for name, fn in remotes.items():
        started.spawn(function_actor(fn, name))
    for handler, pattern in subscribers:
        started.subscribe(handler, pattern)
    return started


def shutdown() -> None:
    """Close the default system, if any (its providers leave the registry at once)."""
    global _default
    with _lock:
        current, _default = _default, None
    if current is not None:
        current.close()


def system() -> BlockingSystem:
    """The default system; raises ``NotRunning`` before :func:`init`."""
    current = _default
    if current is None:
        raise NotRunning("call tactor.init(url) first")
    return current


def expose(fn: Callable[..., Any], name: str | None = None) -> None:
    """Serve ``fn`` (a function or a bound method) as an endpoint, by default named after it."""
    cls = function_actor(fn, name)  # checks the hints now, at registration
    endpoint = cls.__tactor_schema__.endpoint
    with _lock:
        _remotes[endpoint] = fn
        current = _default
    if current is not None:
        current.spawn(cls)


@overload
def remote(fn: F, /) -> F: ...
@overload
def remote(name: str | None = None, /) -> Callable[[F], F]: ...
def remote(target: Any = None, /) -> Any:
    """Decorator: ``@tactor.remote`` or ``@tactor.remote("name")`` serves the function."""
    if callable(target):
        expose(target)
        return target

    def mark(fn: F) -> F:
        expose(fn, target)
        return fn

    return mark


@overload
def stub(
    target: Callable[P, Coroutine[Any, Any, R]],
    *,
    timeout: float | None = None,
    multi: Literal[False] = False,
) -> Callable[P, R]: ...
@overload
def stub(
    target: Callable[P, Coroutine[Any, Any, R]],
    *,
    timeout: float | None = None,
    multi: Literal[True],
) -> Callable[P, list[R]]: ...
@overload
def stub(
    target: Callable[P, R], *, timeout: float | None = None, multi: Literal[False] = False
) -> Callable[P, R]: ...
@overload
def stub(
    target: Callable[P, R], *, timeout: float | None = None, multi: Literal[True]
) -> Callable[P, list[R]]: ...
@overload
def stub(
    target: str, *, timeout: float | None = None, multi: bool = False
) -> Callable[..., Any]: ...
def stub(target: Any, *, timeout: float | None = None, multi: bool = False) -> Any:
    """A blocking callable that calls ``target`` remotely.

    ``target`` is a function (served with ``remote``/``expose``), an actor
    method such as ``Pricing.quote``, or an endpoint name. With ``multi=True``
    it calls every live provider and returns the list of their results (those
    that answered in time, without error). By name with no local definition,
    arguments are encoded by their runtime types (``Codec.to_wire_any``) and
    the result comes back as JSON data.
    """
    schema, method = resolve(target)

    def call(*args: Any, **kwargs: Any) -> Any:
        aio = system().aio
        if multi:
            result = system().run(aio._broadcast(schema, method, args, kwargs, timeout=timeout))
            return list(result)
        return system().run(
            aio._invoke(schema, method, args, kwargs, timeout=timeout, provider=None)
        )

    call.__name__ = f"stub_{method.name}"
    call.__doc__ = f"Calls {schema.endpoint!r} remotely{' on every provider' if multi else ''}."
    return call


@overload
def queue(name: str, item_type: type[T], *, maxsize: int = 0) -> BlockingQueue[T]: ...
@overload
def queue(name: str, item_type: None = None, *, maxsize: int = 0) -> BlockingQueue[Any]: ...
def queue(
    name: str, item_type: type[T] | None = None, *, maxsize: int = 0
) -> BlockingQueue[T] | BlockingQueue[Any]:
    """The named distributed queue (``queue.Queue``'s interface) on the default system."""
    return system().queue(name, item_type, maxsize=maxsize)


def publish(event: object, topic: str | None = None) -> int | None:
    """Publish ``event`` on its type's topic (or ``topic``) through the default system."""
    return system().publish(event, topic=topic)


@overload
def subscriber(fn: F, /) -> F: ...
@overload
def subscriber(*, topic: str | None = None) -> Callable[[F], F]: ...
def subscriber(fn: Any = None, /, *, topic: str | None = None) -> Any:
    """Decorator: receive events of the parameter's type (or on ``topic``, a pattern).

    A plain ``def`` runs in a worker thread for each event, one at a time.
    """

    def register(handler: F) -> F:
        handler_for_function(as_async(handler), topic)  # check the hints now
        with _lock:
            _subscribers.append((handler, topic))
            current = _default
        if current is not None:
            current.subscribe(handler, topic)
        return handler

    return register(fn) if fn is not None else register
