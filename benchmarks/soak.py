"""The fault soak: calls and tells on Redis while providers are SIGKILLed and Redis restarts.

One implementation, two lengths: ``tests/test_soak.py`` runs it for about a
minute in the suite; ``python -m benchmarks --soak SECONDS`` runs it longer and
writes its counts to ``benchmarks/results/soak.{json,md}`` (quoted in
docs/transports.md).

The traffic rides a throwaway ``redis-server`` started with ``--appendonly yes
--appendfsync always``, so that Redis keeps what it acknowledged across its
restart. ``providers`` provider processes (``python -m benchmarks.servers soak``)
serve :class:`Soak`; this process calls ``double`` from ``callers`` concurrent
loops and tells ``record`` from one loop. Meanwhile the plan's faults run at even
intervals: a provider SIGKILLed (and a replacement started at once), or the
Redis server SIGKILLed and started again on the same port and files.

Handled tells are counted where the faults cannot reach: each provider adds
every tell it handles to a hash on the *record* Redis (the stable server the
suite runs against), retrying until the write is done, before the tell is
acknowledged. A tell handled twice (its provider died before acknowledging it)
counts twice there, so duplicates are counted as well as losses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tactor import Actor, ActorSystem, TactorError

from .servers import Server, delete_keys, tactor_url


class Soak(Actor, name="soak"):
    """What the soak's providers serve."""

    def __init__(self, record_url: str, record_key: str) -> None:
        self.redis = aioredis.Redis.from_url(record_url)
        self.key = record_key

    async def on_stop(self) -> None:
        await self.redis.aclose()

    async def double(self, value: int, work: float) -> int:
        await asyncio.sleep(work)  # keeps calls in flight when a provider is killed
        return 2 * value

    async def record(self, tell: int) -> None:
        """Count this tell as handled; the count must not be what loses it, so retry."""
        while True:
            try:
                await self.redis.hincrby(self.key, str(tell), 1)
                return
            except RedisError:
                await asyncio.sleep(0.05)


async def serve_soak(url: str, record_url: str, record_key: str) -> None:
    """A provider process: serve one :class:`Soak` until SIGTERM or until stdin closes."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(0, 1) else None)
    async with ActorSystem(url) as system:
        ref = await system.spawn(Soak, record_url, record_key)
        print("ready", ref.id, flush=True)
        await stop.wait()


@dataclass
class SoakPlan:
    """How long the soak runs, and which faults it meets (spread evenly over ``duration``)."""

    duration: float = 30.0  # seconds of calls and tells
    kills: int = 4  # providers SIGKILLed, each replaced at once
    restarts: int = 1  # Redis server restarts (SIGKILL, then start on the same files)
    providers: int = 3
    callers: int = 8  # concurrent call loops
    deadline: float = 2.0  # each call's deadline (and each tell's bound on waiting for room)
    grace: float = 1.0  # a call or tell that ends later than its deadline + this hung
    downtime: float = 0.5  # seconds Redis stays down at a restart
    tell_interval: float = 0.005  # the pause between two tells
    drain: float = 30.0  # the longest wait, after the load, for accepted tells to be handled
    recovery_limit: float = 10.0  # service must be back this soon after Redis is (asserted)
    aof: bool = True  # False: Redis without persistence, to see what a restart loses then

    def faults(self) -> list[tuple[float, str]]:
        """``(seconds after the start, "kill" or "restart")``, evenly spaced, restarts spread."""
        count = self.kills + self.restarts
        restarts = {(j + 1) * count // (self.restarts + 1) for j in range(self.restarts)}
        kinds = ["restart" if i in restarts else "kill" for i in range(count)]
        if self.restarts and len(restarts) < self.restarts:  # too few slots: restarts first
            kinds = ["restart"] * self.restarts + ["kill"] * self.kills
        return [(self.duration * (i + 1) / (count + 1), kind) for i, kind in enumerate(kinds)]


@dataclass
class SoakCounts:
    """What the soak saw. :meth:`problems` lists what breaks the guarantees."""

    seconds: float = 0.0
    calls: int = 0
    answered: int = 0  # with the right value
    wrong: int = 0  # answered with another value
    errors: dict[str, int] = field(default_factory=dict)  # typed TactorErrors, by type
    untyped: dict[str, int] = field(default_factory=dict)  # exceptions outside the tree
    hung: int = 0  # calls or tells that ended later than their deadline + grace
    longest: float = 0.0  # seconds, of the longest call or tell
    tells: int = 0  # tell() attempts
    accepted: int = 0  # tell() returned
    refused: dict[str, int] = field(default_factory=dict)  # tell() raised, by type
    handled: int = 0  # accepted tells handled at least once
    lost: int = 0  # accepted tells never handled
    duplicates: int = 0  # extra handlings of accepted tells
    unaccepted_handled: int = 0  # tells whose tell() raised, handled all the same
    kills: int = 0
    restarts: int = 0
    recovery: list[float] = field(default_factory=list)  # s from Redis back to a call answered
    dead_consumers: int = 0  # consumers of the endpoint's group left by dead providers (info)
    examples: list[str] = field(default_factory=list)  # a few unexpected outcomes, for the report

    def problems(self, plan: SoakPlan) -> list[str]:
        found = []
        if self.wrong:
            found.append(f"{self.wrong} call(s) answered with a wrong value")
        if self.untyped:
            found.append(f"exceptions outside TactorError: {self.untyped}")
        if self.hung:
            found.append(f"{self.hung} call(s)/tell(s) hung past deadline + grace")
        if self.lost and plan.aof:  # without persistence a restart loses what Redis held
            found.append(f"{self.lost} accepted tell(s) never handled")
        if len(self.recovery) < self.restarts or any(
            r > plan.recovery_limit for r in self.recovery
        ):
            found.append(f"service not back within {plan.recovery_limit} s: {self.recovery}")
        if not self.answered:
            found.append("no call was answered")
        return found

    def lines(self) -> list[str]:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) or "none"
        refused = ", ".join(f"{k} {v}" for k, v in sorted(self.refused.items())) or "none"
        recovery = ", ".join(f"{r:.1f} s" for r in self.recovery) or "-"
        return [
            f"soak: {self.seconds:.0f} s, {self.kills} provider SIGKILLs, "
            f"{self.restarts} Redis restart(s) (service back after {recovery})",
            f"calls: {self.calls} made, {self.answered} answered right, {self.wrong} wrong, "
            f"typed errors: {errors}; outside the tree: {sum(self.untyped.values())}; "
            f"hung past deadline + grace: {self.hung} (the longest took {self.longest:.2f} s)",
            f"tells: {self.tells} sent, {self.accepted} accepted, refused: {refused}; "
            f"accepted and handled: {self.handled}, lost: {self.lost}, "
            f"duplicates: {self.duplicates}; refused yet handled: {self.unaccepted_handled}",
            f"consumers of dead providers left in the endpoint's group: {self.dead_consumers}",
        ]


class RedisProcess:
    """A throwaway redis-server on a free loopback port that keeps every write (AOF, fsync
    always; unless ``aof`` is False) in a directory of its own, so it can be SIGKILLed and
    started again on it."""

    def __init__(self, aof: bool = True) -> None:
        self.aof = aof
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        self.binary = binary
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.dir = Path(tempfile.mkdtemp(prefix="tactor-soak-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes" if self.aof else "no", "--appendfsync", "always",
            "--dir", str(self.dir),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start listening")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class _Soak:
    """One run: the load, the faults and the counts."""

    def __init__(self, plan: SoakPlan, system: ActorSystem, server: RedisProcess) -> None:
        self.plan = plan
        self.system = system
        self.server = server
        self.counts = SoakCounts()
        self.accepted: set[int] = set()
        self.refused: set[int] = set()
        self.stop = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    def _bad(self, kind: str, detail: str) -> None:
        if len(self.counts.examples) < 10:
            self.counts.examples.append(f"{kind}: {detail}")

    def _timed(self, started: float) -> None:
        took = self.loop.time() - started
        self.counts.longest = max(self.counts.longest, took)
        if took > self.plan.deadline + self.plan.grace:
            self.counts.hung += 1

    async def call_loop(self, first: int) -> None:
        value, counts = first, self.counts
        while not self.stop.is_set():
            value += self.plan.callers  # every call has a value of its own
            started = self.loop.time()
            counts.calls += 1
            failed = True
            try:
                async with asyncio.timeout(self.plan.deadline + self.plan.grace + 5):
                    result = await self.system.call(Soak.double, value, random.random() * 0.02)
                failed = False
                if result == 2 * value:
                    counts.answered += 1
                else:
                    counts.wrong += 1
                    self._bad("wrong answer", f"double({value}) = {result}")
            except TactorError as exc:
                name = type(exc).__name__
                counts.errors[name] = counts.errors.get(name, 0) + 1
            except Exception as exc:  # outside the tree (an outer timeout counts as hung too)
                name = type(exc).__name__
                counts.untyped[name] = counts.untyped.get(name, 0) + 1
                self._bad("untyped", repr(exc))
            self._timed(started)
            if failed:  # fast failures (Redis down, no provider) must not spin
                await asyncio.sleep(0.05)

    async def tell_loop(self) -> None:
        tell, counts = 0, self.counts
        while not self.stop.is_set():
            tell += 1
            counts.tells += 1
            started = self.loop.time()
            try:
                async with asyncio.timeout(self.plan.deadline + self.plan.grace + 5):
                    await self.system.tell(Soak.record, tell)
                self.accepted.add(tell)
            except TactorError as exc:
                self.refused.add(tell)
                name = type(exc).__name__
                counts.refused[name] = counts.refused.get(name, 0) + 1
                await asyncio.sleep(0.05)
            except Exception as exc:
                self.refused.add(tell)
                name = type(exc).__name__
                counts.untyped[name] = counts.untyped.get(name, 0) + 1
                self._bad("untyped (tell)", repr(exc))
            self._timed(started)
            await asyncio.sleep(self.plan.tell_interval)

    async def answered(self, timeout: float) -> bool:
        try:
            return await self.system.call(Soak.double, 1, 0.0, timeout=timeout) == 2
        except TactorError:
            return False


async def _faults(soak: _Soak, processes: list[Server], spec: tuple[str, ...]) -> None:
    """Run the plan's faults at their times; SIGKILLed providers are replaced at once."""
    start = soak.loop.time()
    for at, kind in soak.plan.faults():
        await asyncio.sleep(max(0.0, start + at - soak.loop.time()))
        if kind == "kill":
            victim = next(p for p in processes if p.alive)
            await victim.kill()
            soak.counts.kills += 1
            processes.append(await Server.start(*spec))
            continue
        await asyncio.to_thread(soak.server.kill)
        soak.counts.restarts += 1
        await asyncio.sleep(soak.plan.downtime)
        await asyncio.to_thread(soak.server.start)
        back = soak.loop.time()
        while soak.loop.time() < back + soak.plan.recovery_limit * 3:
            if await soak.answered(1.0):
                soak.counts.recovery.append(round(soak.loop.time() - back, 2))
                break
            await asyncio.sleep(0.05)


async def _drain(soak: _Soak, record: aioredis.Redis, key: str) -> dict[int, int]:
    """Wait (up to the plan's drain time) until every accepted tell was handled."""
    end = soak.loop.time() + soak.plan.drain
    while True:
        raw = await record.hgetall(key)
        handled = {int(k): int(v) for k, v in raw.items()}
        if soak.accepted <= handled.keys() or soak.loop.time() > end:
            return handled
        await asyncio.sleep(0.2)


async def run_soak(record_url: str, plan: SoakPlan) -> SoakCounts:
    """Run the soak; ``record_url`` is a Redis the faults do not touch (for the counting)."""
    server = RedisProcess(plan.aof)
    prefix = f"tactor-soak-{uuid.uuid4().hex[:10]}"
    record_key = f"{prefix}:handled"
    url = tactor_url(server.url, prefix, ttl=1, block=0.2, claim_idle=0.2)
    spec = ("soak", url, record_url, record_key)
    processes: list[Server] = []
    record = aioredis.Redis.from_url(record_url)
    try:
        server.start()
        processes += await asyncio.gather(*(Server.start(*spec) for _ in range(plan.providers)))
        async with ActorSystem(url, timeout=plan.deadline) as system:
            soak = _Soak(plan, system, server)
            for _ in range(200):  # registered within a heartbeat; 10 s at most
                if len(await system.providers(Soak)) == plan.providers:
                    break
                await asyncio.sleep(0.05)
            started = soak.loop.time()
            load = [asyncio.create_task(soak.call_loop(i)) for i in range(plan.callers)]
            load.append(asyncio.create_task(soak.tell_loop()))
            faults = asyncio.create_task(_faults(soak, processes, spec))
            try:
                await asyncio.sleep(plan.duration)
                await faults  # a fault due at the very end finishes first
            finally:
                soak.stop.set()
                faults.cancel()
                await asyncio.gather(*load, faults, return_exceptions=True)
            soak.counts.seconds = soak.loop.time() - started
            handled = await _drain(soak, record, record_key)
            soak.counts.dead_consumers = await _dead_consumers(system, server, prefix)
        return _count(soak, handled)
    finally:
        await asyncio.gather(*(p.stop() for p in processes), return_exceptions=True)
        server.remove()
        with contextlib.suppress(RedisError):
            await record.delete(record_key)
        await record.aclose()
        with contextlib.suppress(RedisError):
            await delete_keys(record_url, f"{prefix}:*")


async def _dead_consumers(system: ActorSystem, server: RedisProcess, prefix: str) -> int:
    """Consumers of the endpoint's group that are not live providers (dead ones left behind)."""
    client = aioredis.Redis.from_url(server.url)
    try:
        consumers = await client.xinfo_consumers(f"{prefix}:mb:ep:soak", "tactor")
    finally:
        await client.aclose()
    live = set(await system.providers(Soak))
    return sum(1 for c in consumers if c["name"].decode() not in live)


def _count(soak: _Soak, handled: dict[int, int]) -> SoakCounts:
    counts = soak.counts
    counts.accepted = len(soak.accepted)
    counts.handled = len(soak.accepted & handled.keys())
    counts.lost = counts.accepted - counts.handled
    counts.duplicates = sum(n - 1 for tell, n in handled.items() if tell in soak.accepted)
    counts.unaccepted_handled = len(soak.refused & handled.keys())
    if counts.lost:
        missing = sorted(soak.accepted - handled.keys())
        soak._bad("lost tells", f"{missing[:20]}")
    return counts


def write_report(counts: SoakCounts, plan: SoakPlan, path: Path) -> Path:
    """``soak.json`` and ``soak.md`` (``soak-no-aof.*`` without persistence) under ``path``;
    returns the Markdown file."""
    path.mkdir(parents=True, exist_ok=True)
    meta = {"when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "plan": asdict(plan)}
    name = "soak" if plan.aof else "soak-no-aof"
    (path / f"{name}.json").write_text(json.dumps({**meta, "counts": asdict(counts)}, indent=2))
    problems = counts.problems(plan)
    redis = "AOF, appendfsync always" if plan.aof else "no persistence"
    lines = [f"Fault soak ({redis}), {meta['when']}", ""]
    lines += [f"- {line}" for line in counts.lines()]
    lines += ["", f"- problems: {'; '.join(problems) if problems else 'none'}"]
    lines += [f"- example: {example}" for example in counts.examples]
    md = path / f"{name}.md"
    md.write_text("\n".join(lines) + "\n")
    return md
