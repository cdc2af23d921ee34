"""Serving until a signal: what :meth:`ActorSystem.serve` waits on.

A service started by a program of its own (not by ``tactor run``) serves
until SIGINT or SIGTERM, then drains — each provider finishes and
acknowledges its message in hand — and closes, so that it leaves nothing
behind on the transport (no registry entry, no private mailbox). The handlers
are removed once a signal came: a second one acts as if tactor had not been
there (SIGTERM ends the process; SIGINT raises ``KeyboardInterrupt``), which
stops a drain that takes too long.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence

from ..errors import ConfigError

__all__ = ["STOP_SIGNALS", "wait_for_signal"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def wait_for_signal(
    signals: Sequence[signal.Signals] = STOP_SIGNALS,
    *,
    on_waiting: Callable[[], object] | None = None,
) -> signal.Signals:
    """Wait until the process receives one of ``signals``; return it.

    ``on_waiting`` is called once the handlers are installed.

    Raises :class:`~tactor.errors.ConfigError` where the event loop cannot
    handle signals (outside the main thread, or on Windows).
    """
    loop = asyncio.get_running_loop()
    received: asyncio.Future[signal.Signals] = loop.create_future()

    def on_signal(sig: signal.Signals) -> None:
        if not received.done():
            received.set_result(sig)

    installed: list[signal.Signals] = []
    try:
        for sig in signals:
            try:
                loop.add_signal_handler(sig, on_signal, sig)
            except (RuntimeError, ValueError, NotImplementedError) as exc:
                raise ConfigError(
                    f"serve() cannot handle {sig.name} here ({exc}): run it in the main "
                    "thread's event loop, on a POSIX system"
                ) from None
            installed.append(sig)
        if on_waiting is not None:
            on_waiting()
        return await received
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
