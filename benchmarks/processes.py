"""Process providers (``system.processes()``): do they use the cores, and what a call costs.

Row 1 spreads CPU-bound calls (pure Python, so they hold a GIL) over 2
providers in child processes, against the same calls on 2 providers in this
process, which share its GIL; the target is close to 2× on 2 cores.

Row 2 is the round trip of one call to a provider in a child process (one
call at a time), against the least a round trip to a child costs — a raw
length-prefixed echo over an asyncio socketpair, built as tactor's channel is
(an asyncio protocol reading into a buffer of its own, one task on each side
woken per message) — and, for reference, the same echo over asyncio streams
(the row's baseline before issue 13 item 5: each read allocates 256 KiB), and peers that
call into another process: a ``multiprocessing`` manager proxy (stdlib,
pickles, blocking) and a Ray actor call (when Ray is installed: ``./dev
bench`` installs it). The figures are measured in turn within each repeat.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable

from tactor import ActorSystem

from .harness import Figure, Row, Settings, repeat_latency
from .process_peers import Burner, RawEcho, manager_echo, ray_echo, sync_samples
from .servers import cpu_medians, main_thread_cpu

WORK = 50_000  # loop iterations per CPU-bound call: a few milliseconds
IN_FLIGHT = 8


async def _burn_rate(system: ActorSystem, calls: int) -> float:
    burner = system.proxy(Burner, timeout=120)
    per_caller = max(1, calls // IN_FLIGHT)

    async def caller() -> None:
        for _ in range(per_caller):
            await burner.burn(WORK)

    await asyncio.gather(*(burner.burn(WORK) for _ in range(IN_FLIGHT)))  # warm
    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(IN_FLIGHT)))
    return per_caller * IN_FLIGHT / (time.perf_counter() - start)


async def _cores_row(settings: Settings) -> Row:
    calls = 2 * IN_FLIGHT if settings.quick else max(settings.iterations // 5, 8 * IN_FLIGHT)
    ours = Figure("tactor, 2 process providers", "ops/s")
    base = Figure("tactor, 2 in-process providers (one GIL)", "ops/s")
    for _ in range(settings.repeats):
        async with ActorSystem() as system:
            await system.processes().spawn_many(2, Burner)
            ours.medians.append(await _burn_rate(system, calls))
        async with ActorSystem() as system:
            for _ in range(2):
                await system.spawn(Burner)
            base.medians.append(await _burn_rate(system, calls))
    row = Row(f"CPU-bound calls ({WORK:,} loop steps each), {IN_FLIGHT} in flight", [ours, base])
    speedup = ours.median / base.median
    row.target, row.met = "≥ 1.6× the in-process throughput on 2 cores", speedup >= 1.6
    row.finding = f"{speedup:.2f}× the throughput of the same providers in one process."
    return row


async def _cpu_of(
    cpu: dict[str, list[float]], name: str, child: int, ops: int, run: Awaitable[object]
) -> None:
    """Await ``run`` (``ops`` calls) and add the CPU µs per call of this process and of the
    child ``child`` (its one thread) to ``cpu`` (nothing for the child without /proc)."""
    mine, theirs = time.process_time(), main_thread_cpu(child)
    await run
    cpu.setdefault(f"{name}: parent", []).append((time.process_time() - mine) / ops * 1e6)
    after = main_thread_cpu(child)
    if theirs is not None and after is not None:
        cpu.setdefault(f"{name}: child", []).append((after - theirs) / ops * 1e6)


async def _round_trip_row(settings: Settings) -> Row:
    ours = Figure("tactor call to a process provider", "us")
    base = Figure("raw asyncio socketpair echo to a child, as the channel reads (baseline)", "us")
    streams = Figure("the same echo over asyncio streams (the former baseline)", "us")
    echoes = [RawEcho("protocol"), RawEcho("streams")]
    cpu: dict[str, list[float]] = {}
    async with ActorSystem() as system:
        await system.processes().spawn(Burner)
        burner = system.proxy(Burner)
        child = (await system.endpoint_info(Burner)).providers[0].pid
        for echo in echoes:
            await echo.start()
        try:
            once = dataclasses.replace(settings, repeats=1)
            ops = settings.warmup + settings.iterations
            for _ in range(settings.repeats):  # in turn: a change of load hits all three
                run = repeat_latency(ours, once, lambda: burner.echo(1))
                await _cpu_of(cpu, "tactor", child, ops, run)
                assert echoes[0].process is not None
                run = repeat_latency(base, once, echoes[0].call)
                await _cpu_of(cpu, "echo", echoes[0].process.pid, ops, run)
                await repeat_latency(streams, once, echoes[1].call)
        finally:
            for echo in echoes:
                await echo.stop()
    manager = _blocking("multiprocessing manager proxy call (peer)", settings)
    figures = [ours, base, streams, manager]
    ray = _blocking("Ray actor call (peer)", settings, ray=True)
    if ray is not None:
        figures.append(ray)
    row = Row("round trip of one call to another process", figures)
    ratio = ours.cost_ratio(base)
    row.target, row.met = "≤ 1.5× the raw socketpair echo", ratio <= 1.5
    row.finding = (
        f"{ratio:.2f}× the raw echo ({ours.cost_ratio(streams):.2f}× the streams echo). "
        f"CPU time per call (median): {cpu_medians(cpu)}."
        + ("" if ray else " Ray: ray not installed.")
    )
    return row


def _blocking(name: str, settings: Settings, *, ray: bool = False) -> Figure | None:
    with ray_echo() if ray else manager_echo() as op:
        if op is None:
            return None
        fig = Figure(name, "us")
        for _ in range(settings.repeats):
            median, p99 = sync_samples(op, settings.iterations, settings.warmup)
            fig.medians.append(median)
            fig.p99s.append(p99)
        return fig


async def run(settings: Settings) -> list[Row]:
    return [await _cores_row(settings), await _round_trip_row(settings)]
