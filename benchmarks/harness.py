"""The measuring harness: samples, medians and p99, repeats for spread, ratios, reports.

A *figure* is one thing measured (tactor, a baseline or a peer), repeated
``repeats`` times; a *row* puts figures side by side and states the target.
Latency figures are per-operation times in microseconds (lower is better);
throughput figures are operations per second (higher is better).
"""

from __future__ import annotations

import asyncio
import json
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


@dataclass
class Settings:
    """How hard to measure: ``quick`` is the smoke run the test suite uses."""

    iterations: int = 2000
    warmup: int = 200
    repeats: int = 3
    redis_url: str | None = None
    quick: bool = False
    nats_url: str | None = None

    @classmethod
    def smoke(cls, redis_url: str | None = None, nats_url: str | None = None) -> Settings:
        return cls(
            iterations=30, warmup=5, repeats=1, redis_url=redis_url, quick=True, nats_url=nats_url
        )


@dataclass
class Figure:
    """One subject measured ``repeats`` times."""

    name: str
    unit: str  # "us" (latency) or "ops/s" (throughput, higher is better), or e.g. "MiB"
    medians: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.medians)

    @property
    def p99(self) -> float:
        return statistics.median(self.p99s) if self.p99s else float("nan")

    @property
    def spread(self) -> tuple[float, float]:
        return (min(self.medians), max(self.medians))

    @property
    def lower_is_better(self) -> bool:
        return self.unit != "ops/s"

    def cost_ratio(self, other: Figure) -> float:
        """How many times more this costs than ``other`` (>1: this is slower)."""
        if self.lower_is_better:
            return self.median / other.median
        return other.median / self.median


@dataclass
class Row:
    """Figures side by side: the first is tactor, the rest baselines and peers."""

    name: str
    figures: list[Figure]
    target: str = ""
    met: bool | None = None
    finding: str = ""
    judged_each: bool = False  # several targets, each with its status in ``target``

    def judge(self, *targets: tuple[str, bool]) -> None:
        """Several targets: say how each one stands; the row is met when all are."""
        self.target = "; ".join(f"{name}: {'met' if ok else 'missed'}" for name, ok in targets)
        self.met = all(ok for _, ok in targets)
        self.judged_each = True

    def ratios(self) -> dict[str, float]:
        subject = self.figures[0]
        return {f.name: round(subject.cost_ratio(f), 3) for f in self.figures[1:]}

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for fig, raw in zip(self.figures, data["figures"], strict=True):
            raw.update(median=fig.median, p99=fig.p99, spread=fig.spread)
        data["ratios"] = self.ratios()
        return data


def summarise(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


async def latency(op: Callable[[], Awaitable[Any]], settings: Settings) -> tuple[float, float]:
    """Median and p99 of one awaited operation, in microseconds, one at a time."""
    for _ in range(settings.warmup):
        await op()
    samples = []
    clock = time.perf_counter
    for _ in range(settings.iterations):
        start = clock()
        await op()
        samples.append((clock() - start) * 1e6)
    return summarise(samples)


def sync_latency(
    op: Callable[[], Any], settings: Settings, batch: int = 100
) -> tuple[float, float]:
    """Median and p99 of a fast synchronous operation, timed in batches, in microseconds."""
    for _ in range(settings.warmup):
        op()
    samples = []
    clock = time.perf_counter
    for _ in range(max(1, settings.iterations // 10)):
        start = clock()
        for _ in range(batch):
            op()
        samples.append((clock() - start) * 1e6 / batch)
    return summarise(samples)


async def throughput(op: Callable[[], Awaitable[Any]], settings: Settings, in_flight: int) -> float:
    """Operations per second with ``in_flight`` concurrent callers."""
    total = settings.iterations
    per_worker = max(1, total // in_flight)

    async def worker() -> None:
        for _ in range(per_worker):
            await op()

    await asyncio.gather(*(op() for _ in range(min(settings.warmup, in_flight))))
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return per_worker * in_flight / (time.perf_counter() - start)


async def repeat_latency(
    fig: Figure, settings: Settings, op: Callable[[], Awaitable[Any]]
) -> Figure:
    for _ in range(settings.repeats):
        median, p99 = await latency(op, settings)
        fig.medians.append(median)
        fig.p99s.append(p99)
    return fig


def write_report(rows: list[Row], settings: Settings, path: Path = RESULTS) -> Path:
    """Write ``latest.json`` and ``latest.md``; returns the Markdown path."""
    path.mkdir(parents=True, exist_ok=True)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform_cores()} cores",
        "iterations": settings.iterations,
        "repeats": settings.repeats,
        "quick": settings.quick,
    }
    name = "smoke" if settings.quick else "latest"
    (path / f"{name}.json").write_text(
        json.dumps({"meta": meta, "rows": [r.to_json() for r in rows]}, indent=2) + "\n"
    )
    md = path / f"{name}.md"
    md.write_text(markdown(rows, meta))
    return md


def platform_cores() -> int:
    import os

    return os.cpu_count() or 1


def _fmt(value: float, unit: str) -> str:
    if unit == "ops/s":
        return f"{value:,.0f}/s"
    if unit != "us":
        return f"{value:,.2f} {unit}"
    return f"{value:,.1f} µs" if value < 10_000 else f"{value / 1000:,.1f} ms"


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    lines = [
        f"Measured {meta['when']} on {meta['machine']}, Python {meta['python']}; "
        f"{meta['iterations']} iterations × {meta['repeats']} repeats. "
        "Ratio = tactor's cost ÷ the other's (below 1: tactor is faster).",
        "",
        "| row | subject | median | p99 | spread of medians | ratio | target |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        ratios = row.ratios()
        for i, fig in enumerate(row.figures):
            ratio = "—" if i == 0 else f"{ratios[fig.name]:.2f}×"
            target = ""
            if i == 0 and row.target:
                status = {True: "met", False: "missed", None: ""}[row.met]
                shown = status and not row.judged_each
                target = f"{row.target} ({status})" if shown else row.target
            p99 = "" if fig.unit == "ops/s" else _fmt(fig.p99, fig.unit)
            lo, hi = fig.spread
            subject = fig.name + (f" — {fig.note}" if fig.note else "")
            spread = f"{_fmt(lo, fig.unit)}–{_fmt(hi, fig.unit)}"
            lines.append(
                f"| {row.name if i == 0 else ''} | {subject} | {_fmt(fig.median, fig.unit)} "
                f"| {p99} | {spread} | {ratio} | {target} |"
            )
    findings = [f"- **{r.name}**: {r.finding}" for r in rows if r.finding]
    if findings:
        lines += ["", "Findings:", *findings]
    return "\n".join(lines) + "\n"
