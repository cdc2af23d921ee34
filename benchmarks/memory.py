"""Row 6: the memory of 1,000 idle actors on memory://, against 1,000 asyncio tasks on queues.

Each measurement runs in a fresh process (``python -m benchmarks.memory
KIND N``): it starts what every run needs (the event loop, and for tactor an
:class:`ActorSystem` with one actor already spawned, so imports and one-time
set-up are not counted), reads its resident set size, creates N more, lets
them settle into waiting, collects garbage and reads it again. The figure is
the difference in MiB; the note gives it per actor (or task) in KiB.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import sys
from pathlib import Path

from tactor import Actor, ActorSystem

from .harness import Figure, Row, Settings

ROOT = Path(__file__).resolve().parent.parent
COUNT = 1000


class Idle(Actor, name="bench-idle"):
    """A small, typical actor: a little state and a couple of methods."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen: list[int] = []

    async def add(self, value: int) -> int:
        self.seen.append(value)
        return len(self.seen)

    async def last(self) -> int | None:
        return self.seen[-1] if self.seen else None


def rss_kib() -> int:
    """The resident set size now, in KiB (Linux /proc; elsewhere the peak, from getrusage)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


async def _settle() -> int:
    await asyncio.sleep(0.2)  # every runner reached its first wait
    gc.collect()
    return rss_kib()


async def _tactor(count: int) -> tuple[int, int]:
    # Not closed: the process exits right after reporting (closing 1,000 actors takes
    # seconds, see the finding in the report).
    system = await ActorSystem().start()
    await system.spawn(Idle, -1)
    before = await _settle()
    for n in range(count):
        await system.spawn(Idle, n)
    after = await _settle()
    assert len(system.refs()) == count + 1
    assert await system.call(Idle.add, 1) == 1  # they serve
    return before, after


async def _tasks(count: int) -> tuple[int, int]:
    async def actor(mailbox: asyncio.Queue[int]) -> None:
        while True:
            await mailbox.get()

    held = [asyncio.create_task(actor(asyncio.Queue()))]
    before = await _settle()
    held += [asyncio.create_task(actor(asyncio.Queue())) for _ in range(count)]
    after = await _settle()
    for task in held:
        task.cancel()
    await asyncio.gather(*held, return_exceptions=True)
    return before, after


async def _child_rss(kind: str, count: int) -> tuple[int, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.memory", kind, str(count),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"the {kind} memory child failed with {process.returncode}")
    data = json.loads(out)
    return data["before"], data["after"]


async def run(settings: Settings) -> list[Row]:
    ours = Figure(f"tactor: {COUNT:,} idle actors spawned on memory://", "MiB")
    base = Figure(f"asyncio: {COUNT:,} tasks each waiting on its own Queue (baseline)", "MiB")
    per: dict[str, list[float]] = {ours.name: [], base.name: []}
    for _ in range(settings.repeats):
        for kind, fig in (("tactor", ours), ("tasks", base)):
            before, after = await _child_rss(kind, COUNT)
            fig.medians.append((after - before) / 1024)
            fig.p99s.append((after - before) / 1024)
            per[fig.name].append((after - before) / COUNT)
    for fig in (ours, base):
        values = sorted(per[fig.name])
        fig.note = f"RSS growth; {values[len(values) // 2]:.1f} KiB each"
    return [Row(f"memory of {COUNT:,} idle actors (RSS growth)", [ours, base])]


def main(argv: list[str]) -> None:
    kind, count = argv[0], int(argv[1])
    before, after = asyncio.run(_tactor(count) if kind == "tactor" else _tasks(count))
    print(json.dumps({"before": before, "after": after}), flush=True)
    os._exit(0)  # nothing to clean up: this process only measured itself


if __name__ == "__main__":
    main(sys.argv[1:])
