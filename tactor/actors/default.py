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

Registrations (``remote``, ``expose``, ``subscriber``) made while no default
system runs — decorators at import time — are *declarations*: every
:func:`init` serves them, until :func:`unexpose` or :func:`unsubscribe`
withdraws them. Registrations made while a system runs take effect at once
and belong to that system: :func:`shutdown` forgets them. So a test suite that
calls ``init``/``shutdown`` around each test starts every test with the
import-time declarations only. Everything here drives one
:class:`BlockingSystem`; use :func:`system` to reach it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar, overload

from ..errors import NotRunning
from .actor import Actor, ActorRef
from .blocking import BlockingProcesses, BlockingQueue, BlockingSystem
from .functions import as_async, endpoint_name, function_actor, resolve
from .schema import handler_for_function
from .supervision import RestartPolicy
from .system import EventSubscription

__all__ = [
    "expose",
    "init",
    "processes",
    "publish",
    "queue",
    "remote",
    "shutdown",
    "stub",
    "subscriber",
    "system",
    "unexpose",
    "unsubscribe",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(slots=True)
class _Remote:
    fn: Callable[..., Any]
    actor: type[Actor]
    declared: bool  # made while no system ran: served by every init
    ref: ActorRef[Any] | None = None  # its provider on the running system


@dataclass(slots=True)
class _Subscriber:
    fn: Callable[..., Any]
    topic: str | None
    declared: bool
    subscription: EventSubscription | None = None


# One lock for every change of the default system and its registrations; re-entrant
# because init() shuts the previous system down.
_lock = threading.RLock()
_default: BlockingSystem | None = None
_remotes: dict[str, _Remote] = {}  # by endpoint
_subscribers: list[_Subscriber] = []


def init(transport: str = "memory://", **options: Any) -> BlockingSystem:
    """Start the default system (replacing a running one) and serve the declarations.

    If a declaration cannot be served (a type with no codec, say), the error is
    raised and no default system is left running.
    """
    global _default
    with _lock:
        shutdown()
        started = BlockingSystem(transport, **options).start()
        try:
            for remote in _remotes.values():
                remote.ref = started.spawn(remote.actor)
            for sub in _subscribers:
                sub.subscription = started.subscribe(sub.fn, sub.topic)
        except BaseException:
            started.close()
            _forget_running()
            raise
        _default = started
        return started


def _forget_running() -> None:
    """Drop what was registered on the system that is going away; keep the declarations."""
    for endpoint, remote in list(_remotes.items()):
        remote.ref = None
        if not remote.declared:
            del _remotes[endpoint]
    for sub in _subscribers:
        sub.subscription = None
    _subscribers[:] = [sub for sub in _subscribers if sub.declared]


def shutdown() -> None:
    """Close the default system, if any, and forget what was registered while it ran.

    Its providers leave the registry at once. Declarations (registrations made
    while no system ran) are kept for the next :func:`init`.
    """
    global _default
    with _lock:
        current, _default = _default, None
        _forget_running()
        if current is not None:
            current.close()


def system() -> BlockingSystem:
    """The default system; raises ``NotRunning`` before :func:`init`."""
    current = _default
    if current is None:
        raise NotRunning("call tactor.init(url) first")
    return current


def expose(fn: Callable[..., Any], name: str | None = None) -> None:
    """Serve ``fn`` (a function or a bound method) as an endpoint, by default named after it.

    Raises ``SchemaError`` for missing or unsupported type hints (and, on a
    running system, for types it has no codec for, or when an actor class serves
    the name there) — the function is then not registered — and ``ValueError``
    if this process already exposes a function by that name.
    """
    actor = function_actor(fn, name, serving=True)  # checks the hints now
    endpoint = actor.__tactor_schema__.endpoint
    with _lock:
        known = _remotes.get(endpoint)
        if known is not None:
            raise ValueError(
                f"{endpoint!r} is already exposed by {known.fn!r}; "
                "tactor.unexpose() it first (several processes may each serve a name once)"
            )
        remote = _remotes[endpoint] = _Remote(fn, actor, declared=_default is None)
        if _default is not None:
            try:
                remote.ref = _default.spawn(actor)
            except BaseException:
                del _remotes[endpoint]
                raise


def unexpose(target: Callable[..., Any] | str) -> None:
    """Withdraw an exposed function (or endpoint name): it stops serving here and is forgotten.

    Its provider finishes the call in hand and leaves the registry. Nothing
    happens if this process does not serve it (as in pymq).
    """
    endpoint = target if isinstance(target, str) else endpoint_name(target)
    with _lock:
        if not isinstance(target, str) and endpoint not in _remotes:
            # Exposed under a name of its own: find it by the function.
            endpoint = next((e for e, r in _remotes.items() if r.fn == target), endpoint)
        remote = _remotes.pop(endpoint, None)
        if remote is not None and remote.ref is not None and _default is not None:
            _default.stop(remote.ref)


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


def processes(
    *,
    restart: RestartPolicy = "on-failure",
    max_restarts: int = 5,
    restart_window: float = 60.0,
) -> BlockingProcesses:
    """Spawn providers of the default system in supervised child processes:
    ``tactor.processes().spawn(cls, ...)`` (see :meth:`ActorSystem.processes`)."""
    return system().processes(
        restart=restart, max_restarts=max_restarts, restart_window=restart_window
    )


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
            sub = _Subscriber(handler, topic, declared=_default is None)
            if _default is not None:
                sub.subscription = _default.subscribe(handler, topic)
            _subscribers.append(sub)
        return handler

    return register(fn) if fn is not None else register


def unsubscribe(fn: Callable[..., Any], topic: str | None = None) -> None:
    """Withdraw a subscriber (every registration of ``fn``, or only the one on ``topic``).

    It finishes the event in hand and receives no more. Nothing happens if
    ``fn`` is not subscribed.
    """
    with _lock:
        kept: list[_Subscriber] = []
        gone: list[_Subscriber] = []
        for sub in _subscribers:
            matches = sub.fn == fn and (topic is None or sub.topic == topic)
            (gone if matches else kept).append(sub)
        _subscribers[:] = kept
        for sub in gone:
            if sub.subscription is not None and _default is not None:
                _default.run(sub.subscription.close())
