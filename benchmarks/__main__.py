"""``python -m benchmarks [--quick] [--only ROW ...] [--redis URL] [--nats URL]``,
or ``--soak SECONDS``.

See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys

from .harness import Row, Settings, write_report

#: Row modules, in report order; each has ``async def run(settings) -> list[Row]``.
ROWS = [
    "inprocess",
    "telemetry",
    "redis_calls",
    "broadcast",
    "events",
    "nats_rows",
    "codec",
    "memory",
    "redis_memory",
    "processes",
    "many_providers",
]
NEEDS_REDIS = {"redis_calls", "broadcast", "events", "redis_memory", "nats_rows"}
NEEDS_NATS = {"nats_rows"}


async def run_all(settings: Settings, only: list[str]) -> list[Row]:
    rows: list[Row] = []
    for name in ROWS:
        if only and name not in only:
            continue
        if name in NEEDS_REDIS and not settings.redis_url:
            print(f"skipping {name}: no Redis (set TACTOR_REDIS_URL or --redis)", file=sys.stderr)
            continue
        if name in NEEDS_NATS and not settings.nats_url:
            print(f"skipping {name}: no NATS (set TACTOR_NATS_URL or --nats)", file=sys.stderr)
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        rows += await module.run(settings)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="a smoke run with few iterations")
    parser.add_argument("--only", nargs="*", default=[], choices=ROWS, help="rows to run")
    parser.add_argument("--redis", default=os.environ.get("TACTOR_REDIS_URL"))
    parser.add_argument("--nats", default=os.environ.get("TACTOR_NATS_URL"))
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="run only the fault soak, this long (see benchmarks/soak.py); not a default row",
    )
    parser.add_argument(
        "--no-aof", action="store_true", help="soak a Redis without persistence (counts losses)"
    )
    args = parser.parse_args(argv)
    if args.soak is not None:
        return soak(args.soak, args.redis, aof=not args.no_aof)
    if args.quick:
        settings = Settings.smoke(args.redis, args.nats)
    else:
        settings = Settings(
            iterations=args.iterations, repeats=args.repeats, redis_url=args.redis,
            nats_url=args.nats,
        )  # fmt: skip
    rows = asyncio.run(run_all(settings, args.only))
    path = write_report(rows, settings)
    if not settings.quick and not args.only:  # a full run: refresh the chart and the README
        from .chart import main as chart

        chart()
    print(path.read_text())
    return 0


def soak(seconds: float, redis_url: str | None, *, aof: bool = True) -> int:
    """The fault soak, ``seconds`` long: a fault about every 8 s — a provider SIGKILLed, or
    (each about once a minute) Redis restarted or turned replica for a moment (the READONLY
    flip); counts to ``results/soak.{json,md}``; 1 on a problem."""
    from .harness import RESULTS
    from .soak import SoakPlan, run_soak, write_report

    if not redis_url:
        print("the soak needs a Redis to count on (TACTOR_REDIS_URL or --redis)", file=sys.stderr)
        return 2
    restarts = flips = max(1, round(seconds / 60))
    kills = max(1, round(seconds / 8) - restarts - flips)
    plan = SoakPlan(duration=seconds, kills=kills, restarts=restarts, flips=flips, aof=aof)
    print(f"soaking for {seconds:g} s ...", file=sys.stderr, flush=True)
    counts = asyncio.run(run_soak(redis_url, plan))
    print(write_report(counts, plan, RESULTS).read_text())
    return 1 if counts.problems(plan) else 0


if __name__ == "__main__":
    raise SystemExit(main())
