"""Rows: what the telemetry hooks cost a memory:// call round trip (~20 µs), as ratios
against the same run with hooks that do nothing.

- *stats* (every system; what a user without ``tactor[otel]`` runs): the counters of
  ``system.stats()``;
- *tracing, no SDK* (``tactor[otel]`` installed, no OpenTelemetry SDK configured):
  the stats and the API's no-op spans.

The baseline swaps the node's hooks for :class:`~tactor.actors.telemetry.Telemetry`,
the do-nothing base (one method call per hook), before anything is spawned. The
variants are measured in turn within each repeat, so drift hits them alike.
"""

from __future__ import annotations

import dataclasses

from tactor import ActorSystem
from tactor.actors.envelope import Request
from tactor.actors.stats import Stats
from tactor.actors.telemetry import Telemetry, otel_installed, with_tracing

from .harness import Figure, Row, Settings, repeat_latency, sync_latency
from .servers import RemoteEcho as Echo


def _without_hooks(system: ActorSystem) -> ActorSystem:
    """``system`` with hooks that do nothing (a benchmark's baseline: private attributes)."""
    nothing = Telemetry()
    system._telemetry = nothing
    system._calls.telemetry = nothing
    system._runner_config = dataclasses.replace(system._runner_config, telemetry=nothing)
    return system


async def _measure(fig: Figure, system: ActorSystem, settings: Settings) -> None:
    once = Settings(settings.iterations, settings.warmup, 1, settings.redis_url, settings.quick)
    async with system:
        await system.spawn(Echo)
        echo = system.proxy(Echo)
        await repeat_latency(fig, once, lambda: echo.echo(1))


def _hooks_alone(telemetry: Telemetry, settings: Settings) -> float:
    """Median µs of the four hooks of one call (both sides), with no call around them."""
    request = Request("call", "n.1", "echo", "echo", {}, "node.n", None, "n")

    def once() -> None:
        token, _ = telemetry.sending("call", "echo", "echo", "n.1")
        handling = telemetry.handling(request, "echo@1")
        telemetry.handled(handling, None)
        telemetry.sent(token, None)

    return min(sync_latency(once, settings)[0] for _ in range(settings.repeats))


def _finding(settings: Settings, traced: bool) -> str:
    costs = [("no-op", Telemetry()), ("stats", Stats())]
    if traced:
        costs.append(("stats + tracing without an SDK", with_tracing(Stats(), True)))
    said = ", ".join(f"{name} {_hooks_alone(t, settings):.2f} µs" for name, t in costs)
    return f"the hooks of one call alone (both sides, fastest of {settings.repeats}): {said}"


async def run(settings: Settings) -> list[Row]:
    base = Figure("no-op hooks (baseline)", "us")
    stats = Figure("stats, no tracing (without tactor[otel])", "us")
    traced = Figure("stats + tracing, no SDK configured (tactor[otel])", "us")
    variants = [
        (base, lambda: _without_hooks(ActorSystem(tracing=False))),
        (stats, lambda: ActorSystem(tracing=False)),
    ]
    if otel_installed():
        variants.append((traced, lambda: ActorSystem(tracing=True)))
    for _ in range(settings.repeats):
        for fig, make in variants:
            await _measure(fig, make(), settings)
    rows = [Row("telemetry: stats on a memory:// call", [stats, base], target="≤ 1.10×")]
    rows[0].met = rows[0].ratios()[base.name] <= 1.10
    rows[0].finding = _finding(settings, bool(traced.medians))
    if traced.medians:
        row = Row("telemetry: tactor[otel] without an SDK", [traced, base], target="≤ 1.25×")
        row.met = row.ratios()[base.name] <= 1.25
        rows.append(row)
    return rows
