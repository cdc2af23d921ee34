"""Rows 8–10: many providers in one node on Redis, beside today's code in the same run.

What an idle provider costs (10,000 in one process: spawn time, connections held,
Redis commands per second while nobody calls, process memory per provider), a
broadcast to 1,000 providers (5 processes × 200) and a call to one of them against a
call to an endpoint with one provider. Every figure is measured twice: on this tree
and on the baseline's — the tree of commit ``TACTOR_BENCH_BASELINE`` (154d51f, main
before node-level reading), exported with ``git archive`` — each in processes of its
own (``many_worker.py``, whose ``PYTHONPATH`` picks the tree) on a redis-server of its
own, so that CLIENT LIST and INFO commandstats count them alone.

Today's code cannot run 10,000 idle providers nor 200 in one process (it runs out of
connections); it is measured where it works (50 providers in one process, 5 × 10 for
the calls), and what the larger runs ended with is in the rows' findings.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .harness import Figure, Row, Settings
from .many_raw import floor
from .soak_redis import RedisProcess

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "many_worker.py"
BASELINE = os.environ.get("TACTOR_BENCH_BASELINE", "154d51f")


def baseline_tree(into: Path) -> Path | None:
    """The baseline's ``tactor`` package under ``into``, or None without git (or the commit)."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", BASELINE, "tactor"],
            capture_output=True,
            check=True,
            timeout=60,
        )
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"no baseline tree ({BASELINE}): {exc}", file=sys.stderr)
        return None
    return into


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def _worker(tree: Path, *args: str, timeout: float) -> dict[str, Any]:
    try:
        run = subprocess.run(
            [sys.executable, str(WORKER), *args],
            env=_env(tree),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout:.0f} s"}
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": f"exit {run.returncode}: {run.stderr.strip()[-300:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def idle(tree: Path, providers: int, deadline: float) -> dict[str, Any]:
    server = RedisProcess(aof=False)
    server.start()
    try:
        url = f"{server.url}?prefix=bench-idle"
        return _worker(tree, "idle", url, str(providers), str(deadline), timeout=deadline + 120)
    finally:
        server.remove()


def calls(tree: Path, processes: int, each: int, iterations: int) -> dict[str, Any]:
    """Providers of ``bench-many`` in ``processes`` × ``each``, one of ``bench-one``; a caller."""
    server = RedisProcess(aof=False)
    server.start()
    url = f"{server.url}?prefix=bench-many"
    servers: list[subprocess.Popen[str]] = []
    try:
        plan = [("bench-many", each)] * processes + [("bench-one", 1)]
        for endpoint, count in plan:
            servers.append(
                subprocess.Popen(
                    [sys.executable, str(WORKER), "serve", url, endpoint, str(count)],
                    env=_env(tree),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            )
        for process in servers:
            if not _ready(process, timeout=120):
                return {"error": f"a process serving {each} providers did not start"}
        return _worker(tree, "call", url, str(iterations), timeout=600)
    finally:
        for process in servers:
            _stop(process)
        server.remove()


def raw(processes: int, iterations: int) -> dict[str, Any]:
    """The same spread without tactor (``many_raw.py``), on a redis-server of its own."""
    server = RedisProcess(aof=False)
    server.start()
    try:
        return floor(server.url, processes, iterations)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        server.remove()


def _ready(process: subprocess.Popen[str], timeout: float) -> bool:
    assert process.stdout is not None
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return False
    return process.stdout.readline().startswith("ready")


def _stop(process: subprocess.Popen[str]) -> None:
    """Close its stdin (it closes its system and exits); kill it, by pid, if it does not."""
    with contextlib.suppress(OSError):
        if process.stdin is not None:
            process.stdin.close()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _figure(name: str, unit: str, value: float | None, note: str = "") -> Figure:
    fig = Figure(name, unit, note=note)
    fig.medians = [value if value is not None else float("nan")]
    fig.p99s = list(fig.medians)
    return fig


def _said(result: dict[str, Any]) -> str:
    return str(result.get("error") or result.get("close_error") or "ran")


async def run(settings: Settings) -> list[Row]:
    quick = settings.quick
    big, small = (300, 20) if quick else (10_000, 50)
    processes, each, few = (2, 25, 5) if quick else (5, 200, 10)
    iterations = 50 if quick else max(200, settings.iterations // 4)
    with tempfile.TemporaryDirectory(prefix="tactor-baseline-") as tmp:
        base = baseline_tree(Path(tmp))
        ours_big = idle(ROOT, big, deadline=120)
        ours_small = idle(ROOT, small, deadline=60)
        ours_calls = calls(ROOT, processes, each, iterations)
        floor_calls = raw(processes, iterations)
        theirs_small = idle(base, small, deadline=60) if base else {"error": "no baseline"}
        theirs_big = idle(base, big, deadline=60) if base else {"error": "no baseline"}
        theirs_many = calls(base, processes, each, 20) if base else {"error": "no baseline"}
        theirs_few = calls(base, processes, few, iterations) if base else {"error": "no baseline"}
    return [
        _idle_row(big, small, ours_big, ours_small, theirs_big, theirs_small),
        *_call_rows(processes, each, few, ours_calls, theirs_many, theirs_few, floor_calls),
    ]


def _idle_row(
    big: int,
    small: int,
    ours: dict[str, Any],
    ours_small: dict[str, Any],
    theirs_big: dict[str, Any],
    theirs: dict[str, Any],
) -> Row:
    def per(result: dict[str, Any], key: str, scale: float = 1.0) -> float | None:
        value = result.get(key)
        return None if value is None else float(value) * scale

    spawn_us = per(ours, "spawn_s", 1e6 / big)
    figures = [
        _figure(f"tactor, {big:,} idle providers: spawn time per provider", "us", spawn_us),
        _figure(
            f"today's code ({BASELINE}), {small} providers: spawn time per provider",
            "us",
            per(theirs, "spawn_s", 1e6 / small),
        ),
    ]
    row = Row(f"{big:,} idle providers in one process", figures)
    conns, cmds, kib = (
        ours.get("connections"),
        ours.get("commands_per_s"),
        ours.get("kib_per_provider"),
    )
    row.finding = (
        f"tactor, {big:,}: spawned in {ours.get('spawn_s', float('nan')):.1f} s, "
        f"{conns} connections, "
        f"{cmds:.1f} Redis commands/s idle, {kib:.2f} KiB of process memory per provider; "
        f"with {small}: {ours_small.get('connections')} connections, "
        f"{ours_small.get('commands_per_s', float('nan')):.1f} commands/s. "
        f"Today's code with {small}: {theirs.get('connections')} connections, "
        f"{theirs.get('commands_per_s', float('nan')):.1f} commands/s, "
        f"{theirs.get('kib_per_provider', float('nan')):.2f} KiB per provider; "
        f"with {big:,}: {_said(theirs_big)}"
        if conns is not None and cmds is not None and kib is not None
        else f"tactor, {big:,}: {_said(ours)}"
    )
    row.judge(
        ("spawned in seconds", ours.get("spawn_s", 1e9) < 10),
        ("a handful of connections", (conns or 99) <= 8),
        ("a few commands/s", (cmds or 1e9) <= 15),
        ("< 2 KiB per provider", (kib or 1e9) < 2.0),
    )
    return row


def _call_rows(
    processes: int,
    each: int,
    few: int,
    ours: dict[str, Any],
    many: dict[str, Any],
    theirs: dict[str, Any],
    raw: dict[str, Any],
) -> list[Row]:
    total = processes * each
    one = ours.get("one_us")
    broadcast = Row(
        f"broadcast to {total:,} providers ({processes} processes × {each})",
        [
            _figure(
                f"tactor, {total:,} providers: time to a complete result",
                "us",
                ours.get("broadcast_us"),
            ),
            _figure(
                f"today's code, {processes * few} providers ({processes} × {few})",
                "us",
                theirs.get("broadcast_us"),
            ),
        ],
        finding=f"every broadcast complete: {ours.get('broadcast_all_complete')}; today's code "
        f"with {processes} × {each}: {_said(many)}",
    )
    broadcast.judge(
        ("complete", ours.get("broadcast_all_complete") is True),
        ("well under a second", (ours.get("broadcast_us") or 1e12) < 300_000),
    )
    call = Row(
        f"a call to one of {total:,} providers",
        [
            _figure(f"tactor: to the endpoint of {total:,} providers", "us", ours.get("any_us")),
            _figure("tactor: to one of them by provider=", "us", ours.get("addressed_us")),
            _figure("tactor: to an endpoint with one provider", "us", one),
            _figure("today's code: to an endpoint with one provider", "us", theirs.get("one_us")),
            _figure(
                f"today's code: to the endpoint of {processes * few} providers",
                "us",
                theirs.get("any_us"),
            ),
            _figure(
                f"raw redis-py: to a stream read by {processes} processes", "us", raw.get("many_us")
            ),
            _figure("raw redis-py: to a stream read by one process", "us", raw.get("one_us")),
        ],
    )
    any_us, raw_many, raw_one = ours.get("any_us"), raw.get("many_us"), raw.get("one_us")
    if one and any_us and raw_many and raw_one:
        call.finding = (
            f"to the endpoint of {total:,}: {any_us / one:.2f}× a single-provider call; "
            f"raw redis-py pays {raw_many / raw_one:.2f}× for the same spread over "
            f"{processes} processes (each call wakes the process that slept longest)."
        )
    else:
        call.finding = f"raw redis-py: {_said(raw)}"
    worst = max(ours.get("any_us") or 1e12, ours.get("addressed_us") or 1e12)
    call.judge(("within 1.3× a single-provider call", one is not None and worst <= 1.3 * one))
    return [broadcast, call]
