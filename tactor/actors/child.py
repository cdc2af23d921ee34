"""A provider process: what a child forked by :mod:`tactor.actors.forkserver` runs.

It holds one end of a socketpair with its parent. It dies with the fork
server, which dies with the parent (``PR_SET_PDEATHSIG`` on Linux), and on
the channel's EOF everywhere. It reads the
``start`` frame — the actor class and the system's codecs by import path
(:mod:`tactor.actors.import_paths`), the constructor arguments in the codec's
wire form, the provider's id, and the URL to open (none: the parent's hub,
over the channel) — serves that one provider, answers
``ready`` (or ``failed`` with the reason), answers each ``stats?`` with
``stats`` (:mod:`tactor.actors.child_stats`), and drains on ``drain``:
finishes the message in hand, sends its last ``stats``, then exits.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import functools
import logging
import os
import signal
import socket
import sys
from typing import Any

from ..codecs import Codec, TypeCodec
from ..transports.channel import Channel, settle
from ..transports.hub_client import HubClient
from .actor import Actor
from .child_stats import answer_stats, report_stats
from .import_paths import resolve
from .schema import constructor_schema
from .stats import EMPTY
from .system import ActorSystem

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def import_actor(path: str, main: str | None = None) -> type[Actor]:
    """The actor class at ``module:Qual.Name``; ImportError saying why when there is none."""
    target = resolve(path, main)
    if not (isinstance(target, type) and issubclass(target, Actor)):
        raise ImportError(f"{path} is not an Actor subclass")
    return target


def import_codecs(spec: dict[str, Any]) -> dict[str, Any]:
    """The parent's codecs, as ``ActorSystem`` takes them (``codec``, ``codecs``), imported
    by the paths the parent found for them; ImportError saying why when one is not there."""
    codecs = [_import(path, spec.get("main"), TypeCodec) for path in spec["codecs"]]
    codec = None if spec["codec"] is None else _import(spec["codec"], spec.get("main"), Codec)
    return {"codec": codec, "codecs": codecs}


def _import(path: str, main: str | None, kind: type) -> Any:
    try:
        found = resolve(path, main)
    except Exception as exc:
        raise ImportError(f"{path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(found, kind):
        raise ImportError(f"{path} is not a {kind.__name__} here (it was in the parent)")
    return found


async def _first(*waits: asyncio.Future[Any]) -> None:
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for future in pending:
        future.cancel()


def _failed(channel: Channel, what: str, exc: Exception) -> None:
    channel.send(["failed", f"{what}: {type(exc).__name__}: {exc}"])


async def _serve_spec(
    channel: Channel, spec: dict[str, Any], drain: asyncio.Event
) -> BaseException | None:
    """Serve the provider ``spec`` names until drained (or the parent is gone); the
    ``SystemExit`` or other ``BaseException`` a handler raised, if one did (it drained)."""
    sys.path[:] = spec["path"]  # the parent's, as it is now
    try:
        cls = import_actor(spec["cls"], spec.get("main"))
    except Exception as exc:
        _failed(channel, f"cannot import {spec['cls']}", exc)
        return None
    try:
        codecs = import_codecs(spec)
    except Exception as exc:
        _failed(channel, "cannot import the system's codecs", exc)
        return None
    url = spec.pop("url")
    transport = HubClient(channel) if url is None else url
    system = ActorSystem(transport, **codecs, **spec["options"])
    left: list[BaseException] = []

    def leave(provider: str, exc: BaseException) -> None:
        # Its caller was answered; what the handler asked for is an exit: drain, then it.
        log.warning("%s: a handler raised %r: draining, then exiting", provider, exc)
        left.append(exc)
        drain.set()

    system._runner_config = dataclasses.replace(system._runner_config, leaving=leave)
    answer_stats(channel, lambda: system._counted({}))
    async with system:
        try:
            method = constructor_schema(cls)
            args, kwargs = method.call_args(system.codec.from_wire(spec["args"], method.args_type))
            # "ready" leaves before the provider can answer anything: the parent must not
            # see it serve (and then die) before it knows it started.
            ready = functools.partial(channel.send, ["ready"], flush=True)
            await system._spawn_as(spec["provider"], ready, cls, *args, **kwargs)
        except Exception as exc:
            _failed(channel, f"{spec['cls']} did not start", exc)
            return None
        await _first(
            asyncio.ensure_future(drain.wait()), asyncio.ensure_future(channel.closed.wait())
        )
        if channel.closed.is_set() and url is None:
            os._exit(0)  # the parent, and its hub, are gone: there is nothing to drain into
    report_stats(channel, system._counted({}))  # drained: what it counted, to the last
    return left[0] if left else None


async def serve(sock: socket.socket) -> BaseException | None:
    channel = await Channel.open(sock)
    loop = asyncio.get_running_loop()
    start: asyncio.Future[dict[str, Any]] = loop.create_future()
    drain = asyncio.Event()
    channel.handlers["start"] = lambda header, _: settle(start, header[1])
    channel.handlers["drain"] = lambda header, _: drain.set()
    answer_stats(channel, lambda: EMPTY)  # asked before it serves: it has counted nothing
    reader = loop.create_task(channel.run())
    await _first(start, asyncio.ensure_future(channel.closed.wait()))
    left = None
    if start.done() and not start.cancelled():
        left = await _serve_spec(channel, start.result(), drain)
    await channel.drain()
    channel.close()
    await reader
    return left


def run(sock: socket.socket) -> None:
    """Serve the channel ``sock`` until drained or the parent is gone; raise what a handler
    raised to end the process (``sys.exit(code)``: the process exits with ``code``)."""
    logging.basicConfig(format="%(levelname)s %(name)s[child %(process)d]: %(message)s")
    left = asyncio.run(serve(sock))
    if left is not None:
        raise left.with_traceback(None)
