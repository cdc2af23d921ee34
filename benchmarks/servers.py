"""Server processes for the Redis rows, and the launcher that starts and stops them.

Each server is a separate OS process (``python -m benchmarks.servers KIND ...``):

- ``tactor URL ACTOR COUNT BASE_URL REPORT_KEY``: an :class:`ActorSystem` on
  ``URL`` serving COUNT providers of ``echo`` (:class:`RemoteEcho`) or
  ``listener`` (:class:`Listener`, which reports on raw Redis lists).
- ``raw URL REQUEST_KEY``: plain redis-py, ``BLPOP REQUEST_KEY`` then
  ``RPUSH`` the body onto the reply list the request names; ``rawasync``:
  the same on redis-py's asyncio client.
- ``rawsub URL CHANNEL REPORT_KEY``: plain redis-py pub/sub, reporting like
  :class:`Listener`.
- ``natsraw URL SUBJECT``: plain nats-py, answering each request on SUBJECT
  with its body (core NATS request/reply); ``natsjs URL TAG``: the same over a
  JetStream work queue (see ``nats_floor.py``).
- ``pymq URL NAMESPACE CHANNEL``: pymq 0.7's Redis event bus exposing
  ``echo(value: int) -> int`` on CHANNEL.
- ``soak URL RECORD_URL RECORD_KEY``: one provider of the fault soak's
  :class:`benchmarks.soak.Soak` (see ``soak.py``).

A server prints one line ``ready [ID ...]`` once it serves, and runs until
SIGTERM (a clean close) or SIGKILL, or until its stdin closes (so none
outlives the benchmark process).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import redis
import redis.asyncio as aioredis

from tactor import Actor, ActorSystem, subscribe, topic

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def tactor_url(base: str, prefix: str, **options: object) -> str:
    """``base`` with tactor's ``prefix`` (and other transport options) in its query."""
    parts = urlsplit(base)
    query = [
        *parse_qsl(parts.query),
        ("prefix", prefix),
        *((k, str(v)) for k, v in options.items()),
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


async def delete_keys(base: str, *patterns: str) -> int:
    """Delete every key matching ``patterns`` (SCAN, never a flush); returns how many."""
    client = aioredis.Redis.from_url(base)
    deleted = 0
    try:
        for pattern in patterns:
            keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
            for i in range(0, len(keys), 500):
                deleted += await client.delete(*keys[i : i + 500])
    finally:
        await client.aclose()
    return deleted


# -- what the tactor servers serve ------------------------------------------------


class RemoteEcho(Actor, name="bench-remote-echo"):
    """The provider of the call, broadcast and tell rows."""

    def __init__(self) -> None:
        self.count = 0

    async def echo(self, value: int) -> int:
        return value

    async def bump(self, value: int) -> None:
        self.count += value

    async def total(self) -> int:
        return self.count


@topic("bench.ping")
@dataclass
class Ping:
    """An event of the events row.

    ``sent`` is the publisher's ``time.time()`` for a latency probe (``run`` is
    then its sequence number), 0 for a throughput event (``run`` names the
    measurement, ``batch`` how often to report the count handled).
    """

    run: int
    sent: float
    batch: int


class Listener(Actor, name="bench-listener"):
    """Handles :class:`Ping` events; reports on raw Redis lists ``KEY:lat`` and ``KEY:n``."""

    def __init__(self, redis_url: str, report_key: str) -> None:
        self.redis = aioredis.Redis.from_url(redis_url)
        self.key = report_key
        self.counts: dict[int, int] = {}

    async def on_stop(self) -> None:
        await self.redis.aclose()

    @subscribe
    async def on_ping(self, event: Ping) -> None:
        now = time.time()  # the handler has the event: publish→handler ends here
        if event.sent:
            await self.redis.rpush(f"{self.key}:lat", f"{event.run}:{now - event.sent!r}")
            return
        n = self.counts[event.run] = self.counts.get(event.run, 0) + 1
        if n % event.batch == 0:
            await self.redis.rpush(f"{self.key}:n", f"{event.run}:{n}")


# -- the servers --------------------------------------------------------------------


def _exit_when_stdin_closes() -> None:
    def watch() -> None:
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


async def serve_tactor(url: str, actor: str, count: int, base: str, report_key: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(0, 1) else None)
    async with ActorSystem(url, timeout=30) as system:
        ids = []
        for _ in range(count):
            if actor == "echo":
                ref = await system.spawn(RemoteEcho)
            else:
                ref = await system.spawn(Listener, base, report_key)
            ids.append(ref.id)
        print("ready", *ids, flush=True)
        await stop.wait()


def serve_raw(url: str, request_key: str) -> None:
    """The raw redis-py echo server: each request is ``REPLY_KEY|BODY``."""
    _exit_when_stdin_closes()
    client = redis.Redis.from_url(url)
    client.ping()
    print("ready", flush=True)
    while True:
        item = client.blpop([request_key], timeout=1)
        if item is not None:
            reply_key, _, body = item[1].partition(b"|")
            client.rpush(reply_key, body)


async def serve_raw_async(url: str, request_key: str) -> None:
    """The same echo server on redis-py's asyncio client (as tactor's providers use)."""
    _exit_when_stdin_closes()
    client = aioredis.Redis.from_url(url)
    await client.ping()
    print("ready", flush=True)
    while True:
        item = await client.blpop([request_key], timeout=1)
        if item is not None:
            reply_key, _, body = item[1].partition(b"|")
            await client.rpush(reply_key, body)


def serve_rawsub(url: str, channel: str, report_key: str) -> None:
    """The raw redis-py subscriber: parses each event and reports like :class:`Listener`."""
    _exit_when_stdin_closes()
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    while not pubsub.subscribed:  # set once the server confirmed the subscription
        pubsub.get_message(timeout=1.0)
    print("ready", flush=True)
    counts: dict[int, int] = {}
    for message in pubsub.listen():
        if message["type"] != "message":
            continue
        now = time.time()
        event = orjson.loads(message["data"])
        if event["sent"]:
            client.rpush(f"{report_key}:lat", f"{event['run']}:{now - event['sent']!r}")
            continue
        run = event["run"]
        n = counts[run] = counts.get(run, 0) + 1
        if n % event["batch"] == 0:
            client.rpush(f"{report_key}:n", f"{run}:{n}")


async def serve_nats_raw(url: str, subject: str) -> None:
    """The raw nats-py echo server: core NATS request/reply, no stream."""
    import nats

    _exit_when_stdin_closes()
    nc = await nats.connect(url)

    async def echo(msg: Any) -> None:
        await msg.respond(msg.data)

    await nc.subscribe(subject, cb=echo)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()


def pymq_bus(url: str, namespace: str) -> object:
    """A pymq 0.7 Redis event bus on ``url`` under its own namespace (keys ``__eventbus:NS:*``)."""
    from pymq.provider.redis import RedisEventBus

    return RedisEventBus(namespace=namespace, rds=redis.Redis.from_url(url, decode_responses=True))


def echo(value: int) -> int:
    return value


# pymq reads the annotations as objects (this module's are strings, see the __future__ import).
echo.__annotations__ = {"value": int, "return": int}


def serve_pymq(url: str, namespace: str, channel: str) -> None:
    _exit_when_stdin_closes()
    bus = pymq_bus(url, namespace)
    bus.expose(echo, channel=channel)  # type: ignore[attr-defined]
    threading.Thread(target=bus.run, name="pymq-bus", daemon=True).start()  # type: ignore[attr-defined]
    print("ready", flush=True)
    threading.Event().wait()


def main(argv: list[str]) -> None:
    kind, args = argv[0], argv[1:]
    if kind == "tactor":
        url, actor, count, base, report_key = args
        asyncio.run(serve_tactor(url, actor, int(count), base, report_key))
    elif kind == "raw":
        serve_raw(*args)
    elif kind == "rawasync":
        asyncio.run(serve_raw_async(*args))
    elif kind == "rawsub":
        serve_rawsub(*args)
    elif kind == "natsraw":
        asyncio.run(serve_nats_raw(*args))
    elif kind == "natsjs":
        from .nats_floor import serve_nats_floor

        asyncio.run(serve_nats_floor(*args))
    elif kind == "pymq":
        serve_pymq(*args)
    elif kind == "soak":
        from .soak import serve_soak

        asyncio.run(serve_soak(*args))
    else:
        raise SystemExit(f"unknown server kind {kind!r}")


# -- the launcher -------------------------------------------------------------------


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of process ``pid``, from /proc (Linux); else None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main_thread_cpu(pid: int) -> float | None:
    """CPU seconds of process ``pid``'s main thread, to the nanosecond (/proc's schedstat;
    ``process_cpu`` counts in clock ticks, 10 ms): for a child that runs one thread."""
    try:
        with open(f"/proc/{pid}/schedstat") as stat:
            return int(stat.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def listening_pid(url: str) -> int | None:
    """The pid of the process listening on ``url``'s loopback TCP port (a Redis or NATS
    server on this machine), from /proc (Linux, and only a process we may look into);
    None when there is none, or it cannot be told."""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or parts.port is None:
        return None
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                # local address "HEX_IP:HEX_PORT", state 0A: listening
                if int(fields[1].rsplit(":", 1)[1], 16) == parts.port and fields[3] == "0A":
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc") if inodes else ()):
        with contextlib.suppress(OSError):
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes
                   for fd in os.listdir(f"/proc/{pid}/fd")):  # fmt: skip
                return int(pid)
    return None


async def cpu_each(
    processes: Sequence[Server | int], ops: int, measure: Callable[[], Awaitable[T]]
) -> tuple[T, list[float | None], float]:
    """Run ``measure`` (``ops`` operations): its result, the CPU µs per operation of each
    of ``processes`` (a :class:`Server`, or another process by pid; None without /proc),
    and of this process."""

    def cpu(process: Server | int) -> float | None:
        return process_cpu(process) if isinstance(process, int) else process.cpu()

    before = [cpu(process) for process in processes]
    mine = time.process_time()
    result = await measure()
    caller = (time.process_time() - mine) / ops * 1e6
    after = [cpu(process) for process in processes]
    each = [
        None if a is None or b is None else (a - b) / ops * 1e6
        for a, b in zip(after, before, strict=True)
    ]
    return result, each, caller


async def cpu_per_op(
    servers: list[Server], ops: int, measure: Callable[[], Awaitable[T]]
) -> tuple[T, float | None, float]:
    """Run ``measure`` (``ops`` operations): its result, the CPU µs per operation of
    ``servers`` together (None without /proc), and of this process."""
    result, each, caller = await cpu_each(servers, ops, measure)
    spent = [value for value in each if value is not None]
    if len(spent) != len(servers):
        return result, None, caller
    return result, sum(spent), caller


def cpu_medians(cpu: dict[str, list[float]]) -> str:
    """``name median µs`` for each series of CPU samples, comma-separated."""
    return ", ".join(f"{name} {statistics.median(values):,.0f} µs" for name, values in cpu.items())


class Server:
    """One server process; ``ids`` are what it printed after ``ready`` (tactor provider ids)."""

    def __init__(self, process: asyncio.subprocess.Process, ids: list[str]) -> None:
        self.process = process
        self.ids = ids

    @classmethod
    async def start(cls, kind: str, *args: str) -> Server:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.servers", kind, *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), 30)
        except BaseException:
            process.kill()
            await process.wait()
            raise
        words = line.decode().split()
        if not words or words[0] != "ready":
            process.kill()
            await process.wait()
            raise RuntimeError(f"server {kind} did not start: {line!r}")
        return cls(process, words[1:])

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def cpu(self) -> float | None:
        """CPU seconds (user + system) the process used so far; None where /proc is missing."""
        return process_cpu(self.process.pid)

    async def kill(self) -> None:
        """SIGKILL: nothing is cleaned up in the process."""
        if self.alive:
            self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM and wait (a tactor server closes its system cleanly); SIGKILL after 10 s."""
        if self.alive:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                await self.kill()
        with contextlib.suppress(Exception):
            if self.process.stdin is not None:
                self.process.stdin.close()


async def start_all(*specs: tuple[str, ...]) -> list[Server]:
    """Start servers concurrently; if one fails, stop those that started and re-raise."""
    results = await asyncio.gather(*(Server.start(*spec) for spec in specs), return_exceptions=True)
    started = [r for r in results if isinstance(r, Server)]
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        await stop_all(started)
        raise failed[0]
    return started


async def stop_all(servers: list[Server]) -> None:
    await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)


if __name__ == "__main__":
    main(sys.argv[1:])
