"""Row 1: in-process calls and tells on memory://, against bare asyncio and Pykka's ask."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tactor import ActorSystem, JsonCodec
from tactor.actors.actor import schema_of
from tactor.actors.envelope import Reply, parse_reply, parse_request, request_wire

from .harness import Figure, Row, Settings, repeat_latency, sync_latency
from .servers import RemoteEcho

Echo = RemoteEcho  # the same actor the Redis rows serve, here in-process


async def _asyncio_baseline(settings: Settings) -> Figure:
    """The least an actor call can cost: an asyncio.Queue mailbox and a Future reply."""
    mailbox: asyncio.Queue[tuple[int, asyncio.Future[int]]] = asyncio.Queue()

    async def actor() -> None:
        while True:
            value, reply = await mailbox.get()
            reply.set_result(value)

    task = asyncio.create_task(actor())
    loop = asyncio.get_running_loop()

    async def call() -> int:
        reply: asyncio.Future[int] = loop.create_future()
        await mailbox.put((1, reply))
        return await reply

    fig = await repeat_latency(Figure("asyncio Queue + Future (baseline)", "us"), settings, call)
    task.cancel()
    return fig


def _pykka_figure(settings: Settings) -> Figure | None:
    try:
        import pykka
    except ImportError:
        return None

    class PykkaEcho(pykka.ThreadingActor):  # type: ignore[misc]
        def echo(self, value: int) -> int:
            return value

    ref = PykkaEcho.start()
    proxy = ref.proxy()
    fig = Figure("Pykka 4 ask via proxy (peer, threads)", "us")
    try:
        for _ in range(settings.repeats):
            for _ in range(settings.warmup):
                proxy.echo(1).get()
            samples = []
            for _ in range(settings.iterations):
                start = time.perf_counter()
                proxy.echo(1).get()
                samples.append((time.perf_counter() - start) * 1e6)
            samples.sort()
            fig.medians.append(samples[len(samples) // 2])
            fig.p99s.append(samples[min(len(samples) - 1, int(len(samples) * 0.99))])
    finally:
        ref.stop()
    return fig


async def _tell_throughput(settings: Settings) -> tuple[Figure, Figure]:
    ours = Figure("tactor tell, memory://", "ops/s")
    base = Figure("asyncio Queue put (baseline)", "ops/s")
    n = settings.iterations * 5
    for _ in range(settings.repeats):
        async with ActorSystem(timeout=60) as system:
            await system.spawn(Echo)
            start = time.perf_counter()
            for _ in range(n):
                await system.tell(Echo.bump, 1)
            assert await system.call(Echo.total) == n  # every tell was handled
            ours.medians.append(n / (time.perf_counter() - start))
        base.medians.append(await _queue_throughput(n))
    return ours, base


async def _queue_throughput(n: int) -> float:
    """Puts per second into an asyncio.Queue drained by a consumer task."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    done = asyncio.Event()

    async def consumer() -> None:
        seen = 0
        while seen < n:
            seen += await queue.get()
        done.set()

    task = asyncio.create_task(consumer())
    start = time.perf_counter()
    for _ in range(n):
        await queue.put(1)
    await done.wait()
    task.cancel()
    return n / (time.perf_counter() - start)


def _marshalling_alone(settings: Settings) -> float:
    """Median µs of the codec and envelope work of one call, both sides, with no event loop.

    What every memory:// call does besides moving the message: encode the
    arguments and the request, parse and decode them, encode the result and
    the reply, parse and decode that. No tactor call can cost less than this
    plus the loop's own hand-offs (the asyncio baseline).
    """
    codec = JsonCodec()
    method = schema_of(Echo).methods["echo"]
    instance = Echo()

    def once() -> Any:
        wire = method.encode_args(codec, (1,), {})
        envelope = request_wire("call", "n.1", "e", "echo", wire, "node.n", 4e9, "n")
        request = parse_request(codec.loads(codec.dumps(envelope)))
        args, kwargs = method.call_args(codec.from_wire(request.args, method.args_type))
        step = method.function(instance, *args, **kwargs)
        try:
            step.send(None)
        except StopIteration as done:
            result = done.value
        reply = Reply(request.id, "p", True, codec.to_wire(result, method.result_type))
        back = parse_reply(codec.loads(codec.dumps(reply.to_wire())))
        return codec.from_wire(back.result, method.result_type)

    assert once() == 1
    # The fastest of the repeats: noise only adds to a fixed amount of work.
    return min(sync_latency(once, settings)[0] for _ in range(settings.repeats))


async def run(settings: Settings) -> list[Row]:
    async with ActorSystem() as system:
        await system.spawn(Echo)
        echo = system.proxy(Echo)
        call = Figure("tactor proxy call, memory://", "us")
        await repeat_latency(call, settings, lambda: echo.echo(1))
    figures: list[Any] = [call, await _asyncio_baseline(settings)]
    pykka_fig = await asyncio.to_thread(_pykka_figure, settings)
    if pykka_fig is not None:
        figures.append(pykka_fig)
    row = Row("in-process call round trip", figures, target="≤ 2× asyncio; faster than Pykka")
    ratios = row.ratios()
    asyncio_ratio = ratios[figures[1].name]
    pykka_ok = pykka_fig is None or ratios[pykka_fig.name] < 1
    row.judge(("≤ 2× asyncio", asyncio_ratio <= 2), ("faster than Pykka", pykka_ok))
    work = _marshalling_alone(settings)
    base_median = sorted(figures[1].medians)[len(figures[1].medians) // 2]
    row.finding = (
        f"the codec and envelope work of one call alone (both sides, no event loop) takes "
        f"{work:.1f} µs (fastest of {settings.repeats} runs), {work / base_median:.2f}× "
        "the asyncio baseline's whole call"
    )
    tell, tell_base = await _tell_throughput(settings)
    return [row, Row("in-process tell throughput", [tell, tell_base])]
