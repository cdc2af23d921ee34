"""The loop thread of the blocking facade: an event loop in a daemon thread its object owns.

:meth:`LoopThread.run` submits a coroutine to that loop and waits for it; from
inside a running event loop it raises :class:`~tactor.errors.WouldBlock`
instead of stalling or deadlocking it. After ``fork`` the child inherits no
loop thread (threads do not survive ``fork``): every loop thread made before
the fork is forgotten in the child, which starts its own.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..errors import NotRunning, WouldBlock

__all__ = ["LoopThread"]

T = TypeVar("T")

_LIVE: weakref.WeakSet[LoopThread] = weakref.WeakSet()


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class LoopThread:
    """An event loop running in a daemon thread that this object owns."""

    def __init__(self, name: str = "tactor-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._pid == os.getpid()

    def start(self) -> None:
        if self.running:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop, self._pid = loop, os.getpid()
        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        ready.wait()
        _LIVE.add(self)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` in the loop thread and wait for its result (or exception)."""
        if _in_event_loop():
            coro.close()
            raise WouldBlock(
                "a blocking tactor call was made from inside a running event loop; "
                "in async code use the async API (await system.aio.call(...))"
            )
        if not self.running or self._loop is None:
            coro.close()
            raise NotRunning("the blocking system is not started (or this is a forked child)")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt while waiting: stop the work too
            raise

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        _LIVE.discard(self)
        if loop is not None and thread is not None and self._pid == os.getpid():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)

    def forget(self) -> None:
        """In a forked child: the thread is gone; drop it without touching the loop."""
        self._loop = self._thread = None


def _after_fork_in_child() -> None:
    for loop_thread in list(_LIVE):
        loop_thread.forget()
    _LIVE.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
