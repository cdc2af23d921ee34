"""The fault soak: calls and tells on Redis while providers are SIGKILLed, Redis restarts and
Redis turns replica for a moment (the READONLY flip).

One implementation, two lengths: ``tests/test_soak.py`` runs it for about a
minute in the suite; ``python -m benchmarks --soak SECONDS`` runs it longer and
writes its counts to ``benchmarks/results/soak.{json,md}`` (quoted in
docs/transports.md).

The traffic rides a throwaway ``redis-server`` started with ``--appendonly yes
--appendfsync always``, so that Redis keeps what it acknowledged across its
restart (see ``soak_redis.py``). ``providers`` provider processes (``python -m
benchmarks.servers soak``) serve :class:`Soak`; this process calls ``double``
from ``callers`` concurrent loops and tells ``record`` from one loop. Meanwhile
the plan's faults run at even intervals: a provider SIGKILLed (and a replacement
started at once); the Redis server SIGKILLed and started again on the same port
and files; or the server handed over to its replica (``FAILOVER``), so that it
refuses writes (``READONLY``) for a moment, then made the primary again.

Handled tells are counted where the faults cannot reach: each provider adds
every tell it handles to a hash on the *record* Redis (the stable server the
suite runs against), retrying until the write is done, before the tell is
acknowledged. A tell handled twice (its provider died before acknowledging it)
counts twice there, so duplicates are counted as well as losses. A lost tell is
put down to the fault that can have lost it (``lost_by_cause``, see ``_cause``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tactor import Actor, ActorSystem, TactorError

from .servers import Server, delete_keys, tactor_url
from .soak_redis import SoakRedis


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
    flips: int = 1  # READONLY flips: the server a replica for `readonly` s, then primary again
    readonly: float = 1.0
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
        """``(seconds after the start, "kill", "restart" or "flip")``, evenly spaced; restarts
        and flips take turns, spread among the kills."""
        redis: list[str] = []
        for j in range(max(self.restarts, self.flips)):
            redis += ["restart"] * (j < self.restarts) + ["flip"] * (j < self.flips)
        count = self.kills + len(redis)
        slots = {(j + 1) * count // (len(redis) + 1): kind for j, kind in enumerate(redis)}
        kinds = [slots.get(i, "kill") for i in range(count)]
        if len(slots) < len(redis):  # too few slots: Redis's faults first
            kinds = redis + ["kill"] * self.kills
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
    lost_by_cause: dict[str, int] = field(default_factory=dict)  # see _cause
    duplicates: int = 0  # extra handlings of accepted tells
    unaccepted_handled: int = 0  # tells whose tell() raised, handled all the same
    kills: int = 0
    restarts: int = 0
    flips: int = 0
    recovery: list[float] = field(default_factory=list)  # s from Redis back to a call answered
    flip_recovery: list[float] = field(default_factory=list)  # s from primary again to a call
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
        for kind, done, recovery in (
            ("restart", self.restarts, self.recovery),
            ("flip", self.flips, self.flip_recovery),
        ):
            if len(recovery) < done or any(r > plan.recovery_limit for r in recovery):
                limit = plan.recovery_limit
                found.append(f"service not back within {limit} s after a {kind}: {recovery}")
        if self.flips < plan.flips:
            found.append(f"{plan.flips - self.flips} flip(s) did not happen")
        if not self.answered:
            found.append("no call was answered")
        return found

    def lines(self) -> list[str]:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) or "none"
        refused = ", ".join(f"{k} {v}" for k, v in sorted(self.refused.items())) or "none"
        recovery = ", ".join(f"{r:.1f} s" for r in self.recovery) or "-"
        flip_recovery = ", ".join(f"{r:.1f} s" for r in self.flip_recovery) or "-"
        causes = ", ".join(f"{k} {v}" for k, v in sorted(self.lost_by_cause.items())) or "none"
        return [
            f"soak: {self.seconds:.0f} s, {self.kills} provider SIGKILLs, "
            f"{self.restarts} Redis restart(s) (service back after {recovery}), "
            f"{self.flips} READONLY flip(s) (service back after {flip_recovery})",
            f"calls: {self.calls} made, {self.answered} answered right, {self.wrong} wrong, "
            f"typed errors: {errors}; outside the tree: {sum(self.untyped.values())}; "
            f"hung past deadline + grace: {self.hung} (the longest took {self.longest:.2f} s)",
            f"tells: {self.tells} sent, {self.accepted} accepted, refused: {refused}; "
            f"accepted and handled: {self.handled}, lost: {self.lost} (by cause: {causes}), "
            f"duplicates: {self.duplicates}; refused yet handled: {self.unaccepted_handled}",
            f"consumers of dead providers left in the endpoint's group: {self.dead_consumers}",
        ]


class _Soak:
    """One run: the load, the faults and the counts."""

    def __init__(self, plan: SoakPlan, system: ActorSystem, server: SoakRedis) -> None:
        self.plan = plan
        self.system = system
        self.server = server
        self.counts = SoakCounts()
        self.accepted: dict[int, float] = {}  # tell -> when tell() returned (loop time)
        self.faulted: list[tuple[float, str]] = []  # (when, kind) of each fault, in order
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
                self.accepted[tell] = self.loop.time()
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
    start, plan, counts = soak.loop.time(), soak.plan, soak.counts
    for at, kind in plan.faults():
        await asyncio.sleep(max(0.0, start + at - soak.loop.time()))
        soak.faulted.append((soak.loop.time(), kind))
        if kind == "kill":
            victim = next(p for p in processes if p.alive)
            await victim.kill()
            counts.kills += 1
            processes.append(await Server.start(*spec))
        elif kind == "restart":
            await asyncio.to_thread(soak.server.restart, plan.downtime)
            counts.restarts += 1
            counts.recovery += await _time_to_service(soak)
        elif await asyncio.to_thread(soak.server.flip, plan.readonly):
            counts.flips += 1
            counts.flip_recovery += await _time_to_service(soak)


async def _time_to_service(soak: _Soak) -> list[float]:
    """``[seconds from now to the first call answered]``, or ``[]`` if none was for long."""
    back = soak.loop.time()
    while soak.loop.time() < back + soak.plan.recovery_limit * 3:
        if await soak.answered(1.0):
            return [round(soak.loop.time() - back, 2)]
        await asyncio.sleep(0.05)
    return []


async def _drain(soak: _Soak, record: aioredis.Redis, key: str) -> dict[int, int]:
    """Wait (up to the plan's drain time) until every accepted tell was handled."""
    end = soak.loop.time() + soak.plan.drain
    while True:
        raw = await record.hgetall(key)
        handled = {int(k): int(v) for k, v in raw.items()}
        if soak.accepted.keys() <= handled.keys() or soak.loop.time() > end:
            return handled
        await asyncio.sleep(0.2)


async def run_soak(record_url: str, plan: SoakPlan) -> SoakCounts:
    """Run the soak; ``record_url`` is a Redis the faults do not touch (for the counting)."""
    server = SoakRedis(plan.aof)
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


async def _dead_consumers(system: ActorSystem, server: SoakRedis, prefix: str) -> int:
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
    counts.handled = len(soak.accepted.keys() & handled.keys())
    counts.lost = counts.accepted - counts.handled
    counts.duplicates = sum(n - 1 for tell, n in handled.items() if tell in soak.accepted)
    counts.unaccepted_handled = len(soak.refused & handled.keys())
    missing = sorted(soak.accepted.keys() - handled.keys())
    for tell in missing:
        cause = _cause(soak.faulted, soak.accepted[tell])
        counts.lost_by_cause[cause] = counts.lost_by_cause.get(cause, 0) + 1
    if missing:
        soak._bad("lost tells", f"{missing[:20]}")
    return counts


#: How long an accepted tell may wait in Redis when its provider was SIGKILLed with it in
#: hand (ttl, then claim_idle, then the claim; with much slack).
_PENDING_AT_MOST = 10.0


def _cause(faulted: list[tuple[float, str]], accepted: float) -> str:
    """What lost a tell accepted at ``accepted``: the first restart or flip soon after
    (those are what can drop it from Redis), else the first fault after it, else "none"."""
    after = [(when, kind) for when, kind in faulted if when >= accepted]
    redis = [kind for when, kind in after if kind != "kill" and when - accepted < _PENDING_AT_MOST]
    return redis[0] if redis else after[0][1] if after else "none"


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
