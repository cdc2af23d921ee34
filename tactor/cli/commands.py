"""The commands of ``tactor``: each takes the parsed options and returns an exit status.

They use tactor's public API only. A client command opens a system on
``--url`` (or, with ``--serve``, serves a target in this process first, which
is what ``memory://`` needs) and closes it before returning.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import tactor

from .errors import NotFound, UsageError, UserCodeFailed
from .main import Exit, one_line
from .output import describe_endpoint, endpoint_json, letter_json, letter_line, outcome_json
from .targets import Target, constructor_args, load, parse_json

__all__ = ["COMMANDS"]

log = logging.getLogger("tactor")


def emit(data: Any, options: argparse.Namespace) -> None:
    """Print JSON data: one line with ``--json``, indented without."""
    indent = None if options.json else 2
    print(json.dumps(data, indent=indent, ensure_ascii=False, default=str), flush=True)


# -- systems -------------------------------------------------------------------


async def system_of(target: Target, url: str) -> tactor.ActorSystem:
    """The system a factory sets up (given ``url`` if it takes a parameter)."""
    assert target.factory is not None
    try:
        takes_url = len(inspect.signature(target.factory).parameters) > 0
    except (TypeError, ValueError):
        takes_url = False
    async with users_code(target.spec):
        made = target.factory(url) if takes_url else target.factory()
        if inspect.isawaitable(made):
            made = await made
    if not isinstance(made, tactor.ActorSystem):
        raise UsageError(f"{target.spec} returned {made!r}, not an ActorSystem")
    return made


async def spawn(
    system: tactor.ActorSystem,
    target: Target,
    args_json: str | None,
    count: int,
    *,
    process: bool = False,
) -> list[tactor.ActorRef[Any]]:
    """``count`` providers of the target's class, here or (``process``) each in a
    supervised child process of its own."""
    assert target.actor is not None
    data = None if args_json is None else parse_json(args_json, "ARGS_JSON")
    args, kwargs = constructor_args(target.actor, data)
    spawner = system.processes() if process else system
    async with users_code(target.spec):
        return [await spawner.spawn(target.actor, *args, **kwargs) for _ in range(count)]


@contextlib.asynccontextmanager
async def users_code(spec: str) -> AsyncIterator[None]:
    """Say in one line that the user's code raised (a tactor error passes as it is)."""
    try:
        yield
    except (tactor.TactorError, UsageError):
        raise
    except Exception as exc:
        log.debug("%s raised", spec, exc_info=True)
        raise UserCodeFailed(f"{spec} raised {type(exc).__name__}: {exc}") from None


@contextlib.asynccontextmanager
async def client(options: argparse.Namespace) -> AsyncIterator[tactor.ActorSystem]:
    """A running system on ``--url``, serving ``--serve``'s target if one is given.

    The providers' own log lines (a call they rejected, say) would repeat the one
    line this command prints: only errors are logged.
    """
    logging.getLogger("tactor").setLevel(logging.ERROR)
    target = load(options.serve) if options.serve else None
    if target is not None and target.factory is not None:
        system = await system_of(target, options.url)
    else:
        system = tactor.ActorSystem(options.url)
    async with system:
        if target is not None and target.actor is not None:
            await spawn(system, target, options.serve_args, 1)
        yield system


# -- run -----------------------------------------------------------------------


async def run(options: argparse.Namespace) -> int:
    if options.providers < 1:
        raise UsageError(f"-n {options.providers}: expected 1 or more providers")
    target = load(options.target)
    _log_to_stderr(options.log_level)
    if target.factory is not None:
        if options.args is not None or options.providers != 1 or options.process:
            raise UsageError(f"{target.spec} is a factory: it takes no ARGS_JSON, -n or --process")
        system = await system_of(target, options.url)
    else:
        system = tactor.ActorSystem(options.url)
    async with system:
        if target.actor is not None:
            await spawn(system, target, options.args, options.providers, process=options.process)
        received = await system.serve(
            drain_timeout=options.drain_timeout, on_serving=lambda: _serving(system, options)
        )
    if options.json:
        emit({"event": "stopped", "signal": received.name}, options)
    return Exit.OK


def _log_to_stderr(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("tactor")
    try:
        logger.setLevel(level.upper())
    except ValueError:
        raise UsageError(f"--log-level {level!r}: expected DEBUG, INFO, WARNING or ERROR") from None
    logger.addHandler(handler)


def _serving(system: tactor.ActorSystem, options: argparse.Namespace) -> None:
    refs: dict[str, list[str]] = {}
    for ref in system.refs():
        refs.setdefault(ref.endpoint, []).append(ref.id)
    if options.json:
        emit({"event": "serving", "node": system.node, "providers": refs}, options)
    else:
        served = "; ".join(f"{e}: {', '.join(ids)}" for e, ids in refs.items()) or "nothing"
        print(f"serving {served} on {system.transport!r}", flush=True)
        print("SIGINT or SIGTERM drains and stops", flush=True)
    if options.url.startswith("memory:"):
        log.warning("memory:// lives in this process: nothing outside it can reach these providers")


# -- the registry ---------------------------------------------------------------


async def ls(options: argparse.Namespace) -> int:
    async with client(options) as system:
        found = await system.endpoints()
    if options.json:
        emit([endpoint_json(e) for e in found], options)
    elif not found:
        print("no endpoint has a live provider")
    for endpoint in [] if options.json else found:
        print(describe_endpoint(endpoint))
    return Exit.OK


async def providers(options: argparse.Namespace) -> int:
    async with client(options) as system:
        found = await system.endpoint_info(options.endpoint)
    if options.json:
        emit(endpoint_json(found), options)
    else:
        print(describe_endpoint(found))
    return Exit.OK if found.providers else Exit.NOT_FOUND


# -- calls ---------------------------------------------------------------------


def _call_parts(options: argparse.Namespace) -> tuple[str, str, list[Any], dict[str, Any]]:
    endpoint, dot, method = options.target.rpartition(".")
    if not dot or not endpoint or not method:
        raise UsageError(f"{options.target!r}: expected ENDPOINT.METHOD (e.g. pricing.quote)")
    args = parse_json(options.args, "ARGS_JSON")
    if not isinstance(args, list):
        raise UsageError(f"ARGS_JSON must be a JSON list of positional arguments, not {args!r}")
    kwargs = {} if options.kwargs is None else parse_json(options.kwargs, "--kwargs")
    if not isinstance(kwargs, dict):
        raise UsageError(f"--kwargs must be a JSON object, not {kwargs!r}")
    return endpoint, method, args, kwargs


async def call(options: argparse.Namespace) -> int:
    endpoint, method, args, kwargs = _call_parts(options)
    async with client(options) as system:
        if options.broadcast:
            if options.provider:
                raise UsageError("--broadcast calls every provider: it takes no --provider")
            result = await system.broadcast_json(
                endpoint, method, args, kwargs, timeout=options.timeout
            )
            return _broadcast_outcomes(result, options)
        value = await system.call_json(
            endpoint, method, args, kwargs, timeout=options.timeout, provider=options.provider
        )
    emit(value, options)
    return Exit.OK


def _broadcast_outcomes(result: tactor.BroadcastResult[Any], options: argparse.Namespace) -> int:
    if options.json:
        emit([outcome_json(o) for o in result.outcomes], options)
    for o in [] if options.json else result.outcomes:
        if o.ok:
            print(f"{o.provider}\tok\t{json.dumps(o.value, ensure_ascii=False, default=str)}")
        elif o.error is not None:
            print(f"{o.provider}\terror\t{one_line(o.error)}")
        else:
            print(f"{o.provider}\tsilent\tno answer before the deadline")
    if result.errors:
        return Exit.FAILED
    return Exit.OK if result.complete else Exit.TIMEOUT


async def tell(options: argparse.Namespace) -> int:
    endpoint, method, args, kwargs = _call_parts(options)
    async with client(options) as system:
        await system.tell_json(
            endpoint, method, args, kwargs, timeout=options.timeout, provider=options.provider
        )
    if options.json:
        emit({"accepted": True}, options)
    else:
        print(f"accepted: {endpoint}.{method}")
    return Exit.OK


async def publish(options: argparse.Namespace) -> int:
    event = parse_json(options.event, "EVENT_JSON")
    async with client(options) as system:
        reached = await system.publish_json(options.topic, event, type_name=options.type_name)
    if options.json:
        emit({"topic": options.topic, "reached": reached}, options)
    elif reached is None:
        print(f"published on {options.topic} (this transport does not count subscribers)")
    else:
        print(f"published on {options.topic}: {reached} subscription(s) reached")
    return Exit.OK


# -- dead letters and schemas ----------------------------------------------------


async def dead_letters(options: argparse.Namespace) -> int:
    ident = options.replay or options.discard
    async with client(options) as system:
        letters = await system.dead_letters(options.endpoint)
        if ident is None:
            if options.json:
                emit([letter_json(letter) for letter in letters], options)
            for letter in [] if options.json else letters:
                print(letter_line(letter))
            return Exit.OK
        found = next((x for x in letters if x.id == ident), None)
        act = system.replay if options.replay else system.discard
        if found is None or not await act(found):
            raise NotFound(f"{options.endpoint!r} has no dead letter {ident!r}")
    done = "replayed" if options.replay else "discarded"
    if options.json:
        emit({done: ident}, options)
    else:
        print(f"{done} {ident}")
    return Exit.OK


async def schema(options: argparse.Namespace) -> int:
    from .asyncapi import asyncapi_document

    classes = [load(spec, factories=False).actor for spec in options.targets]
    actors = [cls for cls in classes if cls is not None]
    if options.format == "asyncapi":
        title = options.title or ", ".join(tactor.json_schema(c)["endpoint"] for c in actors)
        emit(asyncapi_document(actors, title=title, version=options.api_version), options)
    else:
        found = [tactor.json_schema(cls) for cls in actors]
        emit(found[0] if len(found) == 1 else found, options)
    return Exit.OK


COMMANDS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "run": run,
    "ls": ls,
    "providers": providers,
    "call": call,
    "tell": tell,
    "publish": publish,
    "schema": schema,
    "dead-letters": dead_letters,
}
