"""Named distributed FIFO queues (``system.queue``) — on every transport."""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tactor import (
    ActorSystem,
    AsyncQueue,
    ConfigError,
    DecodeError,
    EncodeError,
    NotRunning,
    PayloadTooLarge,
    SchemaError,
    TransportClosed,
    UnreadableItem,
)
from tests.conftest import drop_keys, require_redis, with_query
from tests.model import Item


@dataclass
class Job:
    id: int
    tags: list[str]
    note: str | None = None


# -- basics --------------------------------------------------------------------


async def test_fifo_order(url: str) -> None:
    async with ActorSystem(url) as system:
        q = system.queue("jobs", int)
        assert isinstance(q, AsyncQueue) and q.name == "jobs" and q.maxsize == 0
        for n in range(20):
            await q.put(n)
        assert [await q.get() for _ in range(10)] == list(range(10))
        await q.put(99)
        assert [await q.get_nowait() for _ in range(11)] == [*range(10, 20), 99]


async def test_typed_items_round_trip(url: str) -> None:
    async with ActorSystem(url) as system:
        q = system.queue("jobs", Job)
        jobs = [Job(1, ["a", "b"]), Job(2, [], "urgent")]
        for job in jobs:
            await q.put(job)
        got = [await q.get(timeout=2), await q.get(timeout=2)]
        assert got == jobs and all(type(j) is Job for j in got)
        listed = system.queue("lists", list[int])
        await listed.put([1, 2, 3])
        assert await listed.get() == [1, 2, 3]


async def test_untyped_items_come_back_as_json_data(url: str) -> None:
    async with ActorSystem(url) as system:
        q = system.queue("anything")
        items: list[object] = [
            "text",
            7,
            2.5,
            None,
            True,
            {"a": 1, "b": [1, "x", {"c": None}]},
            [1, 2, 3],
            (4, 5),
            Job(3, ["t"]),
            [Job(4, [])],
        ]
        for item in items:
            await q.put(item)
        got = [await q.get(timeout=2) for _ in items]
        assert got == [
            "text",
            7,
            2.5,
            None,
            True,
            {"a": 1, "b": [1, "x", {"c": None}]},
            [1, 2, 3],
            [4, 5],
            {"id": 3, "tags": ["t"], "note": None},
            [{"id": 4, "tags": [], "note": None}],
        ]
        with pytest.raises(EncodeError, match="str keys"):
            await q.put({1: "a"})
        assert await q.qsize() == 0


async def test_an_untyped_put_is_read_by_a_typed_queue(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.queue("shared").put({"id": 5, "tags": ["x"]})
        assert await system.queue("shared", Job).get() == Job(5, ["x"])


# -- timeouts and bounds ---------------------------------------------------------


async def test_get_timeout_raises_empty_within_the_timeout(url: str) -> None:
    async with ActorSystem(url) as system:
        q = system.queue("empty", int)
        start = time.monotonic()
        with pytest.raises(queue.Empty):
            await q.get(timeout=0.3)
        elapsed = time.monotonic() - start
        assert 0.25 <= elapsed < 1.0, elapsed
        start = time.monotonic()
        with pytest.raises(queue.Empty):
            await q.get(timeout=0)
        assert time.monotonic() - start < 0.2
        with pytest.raises(ConfigError, match=">= 0"):
            await q.get(timeout=-1)


async def test_get_nowait_on_empty_raises_empty(url: str) -> None:
    async with ActorSystem(url) as system:
        q = system.queue("empty", int)
        with pytest.raises(queue.Empty):
            await q.get_nowait()
        with pytest.raises(queue.Empty):
            await q.get(block=False)
        await q.put(1)
        assert await q.get(block=False) == 1


async def test_get_waits_for_a_put(url: str) -> None:
    async with ActorSystem(url) as system:
        q = system.queue("later", str)
        getter = asyncio.create_task(q.get(timeout=5))
        await asyncio.sleep(0.1)
        assert not getter.done()
        await q.put("hello")
        assert await asyncio.wait_for(getter, 2) == "hello"


async def test_bounded_queue_put_nowait_raises_full(url: str) -> None:
    async with ActorSystem(url) as system:
        q = system.queue("bounded", int, maxsize=2)
        await q.put_nowait(1)
        await q.put(2, block=False)
        with pytest.raises(queue.Full):
            await q.put_nowait(3)
        with pytest.raises(queue.Full):
            await q.put(3, block=False)
        assert await q.qsize() == 2
        assert await q.unfinished() == 2  # a refused put counts no task


async def test_blocking_put_with_timeout_raises_full_after_waiting(url: str) -> None:
    async with ActorSystem(url) as system:
        q = system.queue("bounded", int, maxsize=1)
        await q.put(1)
        start = time.monotonic()
        with pytest.raises(queue.Full):
            await q.put(2, timeout=0.3)
        elapsed = time.monotonic() - start
        assert 0.25 <= elapsed < 1.0, elapsed
        assert [await q.get_nowait()] == [1]
        with pytest.raises(queue.Empty):
            await q.get_nowait()


async def test_blocking_put_succeeds_when_a_consumer_frees_room(url: str) -> None:
    async with ActorSystem(url) as producer, ActorSystem(url) as consumer:
        q = producer.queue("bounded", int, maxsize=1)
        await q.put(1)
        putter = asyncio.create_task(q.put(2, timeout=5))
        await asyncio.sleep(0.1)
        assert not putter.done()
        assert await consumer.queue("bounded", int).get() == 1
        await asyncio.wait_for(putter, 2)
        assert await q.get(timeout=1) == 2
        # block=True without a timeout waits as long as it takes.
        await q.put(3)
        putter = asyncio.create_task(q.put(4))
        await asyncio.sleep(0.1)
        assert await q.get() == 3
        await asyncio.wait_for(putter, 2)
        assert await q.get() == 4


async def test_putters_waiting_on_a_full_queue_all_get_in_and_a_timeout_leaves_the_line(
    url: str,
) -> None:
    """Thirty putters wait on a full queue; one whose timeout passes gets ``queue.Full``
    and the line goes on without it: a getter drains every other item."""
    async with ActorSystem(url) as producer, ActorSystem(url) as consumer:
        q = producer.queue("bounded", int, maxsize=2)
        await q.put(-2)
        await q.put(-1)
        putters = []
        for i in range(30):
            timeout = 0.2 if i == 5 else 10
            putters.append(asyncio.create_task(q.put(i, timeout=timeout)))
            await asyncio.sleep(0.005)
        with pytest.raises(queue.Full):
            await asyncio.wait_for(putters[5], 2)
        assert not any(p.done() for i, p in enumerate(putters) if i != 5)
        theirs = consumer.queue("bounded", int)
        got = [await theirs.get(timeout=5) for _ in range(31)]
        await asyncio.wait_for(asyncio.gather(*putters[:5], *putters[6:]), 5)
        assert got[:2] == [-2, -1]
        assert sorted(got[2:]) == [i for i in range(30) if i != 5]
        assert await q.empty()


async def test_qsize_empty_full(url: str) -> None:
    async with ActorSystem(url) as system:
        q = system.queue("sized", int, maxsize=3)
        assert (await q.qsize(), await q.empty(), await q.full()) == (0, True, False)
        await q.put(1)
        assert (await q.qsize(), await q.empty(), await q.full()) == (1, False, False)
        await q.put(2)
        await q.put(3)
        assert (await q.qsize(), await q.empty(), await q.full()) == (3, False, True)
        await q.get()
        assert (await q.qsize(), await q.empty(), await q.full()) == (2, False, False)
        unbounded = system.queue("sized", int)  # the same queue, seen without a bound
        assert await unbounded.qsize() == 2 and not await unbounded.full()


# -- task_done and join -----------------------------------------------------------


async def test_join_returns_after_every_task_is_done(url: str) -> None:
    async with ActorSystem(url) as system:
        q = system.queue("work", int)
        await q.join()  # nothing unfinished: at once
        for n in range(3):
            await q.put(n)
        joiner = asyncio.create_task(q.join())
        for _ in range(3):
            await q.get()
        await asyncio.sleep(0.1)
        assert not joiner.done()  # got, not done
        await q.task_done()
        await q.task_done()
        await asyncio.sleep(0.1)
        assert not joiner.done() and await q.unfinished() == 1
        await q.task_done()
        await asyncio.wait_for(joiner, 2)
        assert await q.unfinished() == 0


async def test_task_done_too_often_raises_value_error(url: str) -> None:
    async with ActorSystem(url) as system:
        q = system.queue("work", int)
        with pytest.raises(ValueError, match="too many times"):
            await q.task_done()
        await q.put(1)
        await q.get()
        await q.task_done()
        with pytest.raises(ValueError, match="too many times"):
            await q.task_done()
        assert await q.unfinished() == 0


async def test_join_across_nodes(url: str) -> None:
    async with ActorSystem(url) as producer, ActorSystem(url) as worker:
        jobs = producer.queue("work", Job)
        for n in range(5):
            await jobs.put(Job(n, []))

        async def work() -> None:
            q = worker.queue("work", Job)
            for _ in range(5):
                await q.get()
                await asyncio.sleep(0.01)
                await q.task_done()

        task = asyncio.create_task(work())
        await asyncio.wait_for(jobs.join(), 5)
        await task


# -- competing consumers -----------------------------------------------------------


async def test_two_nodes_competing_get_every_item_exactly_once(url: str) -> None:
    async with ActorSystem(url) as one, ActorSystem(url) as two:
        got: list[int] = []

        async def consume(system: ActorSystem) -> None:
            q = system.queue("race", int)
            while (item := await q.get(timeout=10)) != -1:
                got.append(item)
                await q.task_done()
            await q.task_done()

        consumers = [asyncio.create_task(consume(s)) for s in (one, two) for _ in range(4)]
        producer = one.queue("race", int)
        for n in range(200):
            await producer.put(n)
        await asyncio.wait_for(producer.join(), 10)
        for _ in consumers:
            await producer.put(-1)
        await asyncio.wait_for(asyncio.gather(*consumers), 10)
        assert len(got) == 200
        assert sorted(got) == list(range(200))
        assert await producer.qsize() == 0 and await producer.unfinished() == 0


@pytest.mark.redis
@pytest.mark.slow
async def test_consumer_processes_drain_every_item_exactly_once(tmp_path: Path) -> None:
    base = require_redis()
    prefix = f"tactor-test:q{time.monotonic_ns()}"
    url = with_query(base, prefix=prefix)
    outs = [tmp_path / f"worker{n}.json" for n in range(2)]
    command = [sys.executable, "-m", "tests.queue_worker", url, "procs"]
    workers = [
        await asyncio.create_subprocess_exec(*command, str(out), stdout=asyncio.subprocess.PIPE)
        for out in outs
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = await asyncio.wait_for(worker.stdout.readline(), 30)
            assert line.strip() == b"ready"
        async with ActorSystem(url) as system:
            q = system.queue("procs", int)
            for n in range(300):
                await q.put(n)
            for _ in workers:
                await q.put(-1)
            await asyncio.wait_for(q.join(), 30)
            for worker in workers:
                assert await asyncio.wait_for(worker.wait(), 30) == 0
            assert await q.qsize() == 0
        got = [json.loads(out.read_text()) for out in outs]
        assert all(got), [len(g) for g in got]  # both processes took part
        everything = [item for items in got for item in items]
        assert len(everything) == 300
        assert sorted(everything) == list(range(300))
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
        drop_keys(base, prefix)


# -- cancellation ------------------------------------------------------------------


async def test_cancelling_a_waiting_get_loses_no_item(url: str) -> None:
    async with ActorSystem(url) as system:
        q = system.queue("cancel", int)
        getter = asyncio.create_task(q.get())
        await asyncio.sleep(0.05)
        getter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await getter
        await q.put(1)
        assert await q.get(timeout=5) == 1
        # A get cut short by asyncio.wait_for's own timeout: the same.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(q.get(timeout=10), 0.05)
        await q.put(2)
        await q.put(3)
        assert [await q.get(timeout=5), await q.get(timeout=5)] == [2, 3]
        assert await q.qsize() == 0


async def test_many_cancelled_getters_lose_nothing(url: str) -> None:
    async with ActorSystem(url) as system:
        q = system.queue("cancel", int)
        getters = [asyncio.create_task(q.get()) for _ in range(10)]
        await asyncio.sleep(0.05)
        for n in range(5):
            await q.put(n)
        got = await _cancel(getters)
        while True:
            try:
                got.append(await q.get(timeout=0.5 if len(got) < 5 else 0))
            except queue.Empty:
                break
        assert sorted(got) == list(range(5))


_PUT_EIGHT = """
import asyncio, sys
from tactor import ActorSystem

async def main() -> None:
    async with ActorSystem(sys.argv[1]) as system:
        for n in range(8):
            await system.queue(sys.argv[2], int).put(n)

asyncio.run(main())
"""


@pytest.mark.parametrize("url", ["redis", "nats"], indirect=True)
async def test_getters_cancelled_with_their_items_on_the_way_lose_nothing(url: str) -> None:
    # Another process puts while this one's loop is held (subprocess.run): the items go
    # to the waiting getters and lie unread on the wire when the getters are cancelled.
    async with ActorSystem(url) as system:
        q = system.queue("in-flight", int)
        getters = [asyncio.create_task(q.get()) for _ in range(8)]
        await asyncio.sleep(0.1)
        putter = [sys.executable, "-c", _PUT_EIGHT, url, "in-flight"]
        subprocess.run(putter, check=True, timeout=60)  # noqa: ASYNC221 - holds the loop
        got = await _cancel(getters)
        while len(got) < 8:
            got.append(await q.get(timeout=2))
        assert sorted(got) == list(range(8))
        assert await q.qsize() == 0


async def test_an_item_put_after_many_cancelled_gets_reaches_a_waiting_one(url: str) -> None:
    # On NATS each cancelled get's pull request stays open at the server for a moment, and
    # what it brings goes back: the item passes them by, once, to the get that waits.
    async with ActorSystem(url) as system:
        q = system.queue("passed-by", int)
        cancelled = [asyncio.create_task(q.get()) for _ in range(20)]
        await asyncio.sleep(0.1)
        assert await _cancel(cancelled) == []
        waiting = asyncio.create_task(q.get(timeout=10))
        await asyncio.sleep(0.05)
        await q.put(7)
        assert await waiting == 7
        assert await q.qsize() == 0
        with pytest.raises(queue.Empty):
            await q.get(timeout=0.5)


async def _cancel(getters: list[asyncio.Task[int]]) -> list[int]:
    """Cancel each get; what those that had their item already returned."""
    for getter in getters:
        getter.cancel()
    await asyncio.wait(getters)
    return [g.result() for g in getters if not g.cancelled()]


# -- errors, names, lifetime --------------------------------------------------------


async def test_an_item_that_does_not_decode_is_taken_and_handed_over_as_bytes(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.queue("mixed").put({"id": "not a number", "tags": []})
        await system.queue("mixed").put({"id": 1, "tags": []})
        jobs = system.queue("mixed", Job)
        with pytest.raises(UnreadableItem, match=r"'mixed'.* not Job .*id: expected int") as bad:
            await jobs.get()
        assert isinstance(bad.value, DecodeError) and bad.value.errors
        assert orjson.loads(bad.value.payload) == {"id": "not a number", "tags": []}  # not lost
        assert await jobs.get() == Job(1, [])
        await jobs.task_done()
        await asyncio.wait_for(jobs.join(), 2)  # the bad item was counted done


async def test_wrong_items_and_large_payloads_are_refused_at_put(url: str) -> None:
    async with ActorSystem(url, max_payload=1000) as system:
        q = system.queue("checked", Job)
        with pytest.raises(EncodeError):
            await q.put("not a job")  # type: ignore[arg-type]
        # A value of a plain type that does not fit: refused at put, not lost at get.
        numbers = system.queue("numbers", int)
        with pytest.raises(EncodeError, match=r"does not fit int: .*expected int, got str"):
            await numbers.put("x")  # type: ignore[arg-type]
        with pytest.raises(EncodeError, match="qty"):
            await system.queue("jobs", list[Item]).put([Item("a", "2")])  # type: ignore[arg-type]
        assert await numbers.qsize() == 0 and await numbers.unfinished() == 0
        with pytest.raises(PayloadTooLarge, match="max_payload=1000"):
            await q.put(Job(1, ["x" * 2000]))
        with pytest.raises(PayloadTooLarge):
            await system.queue("untyped").put("x" * 2000)
        assert await q.qsize() == 0 and await q.unfinished() == 0


def test_queue_names_and_types_are_checked() -> None:
    system = ActorSystem()
    for bad in ["", "a b", "a:b", "a/b", "-x", "é", "a\n"]:
        with pytest.raises(ConfigError, match="queue name"):
            system.queue(bad)
    assert repr(system.queue("ok_name.v1-2", list[int], maxsize=3)) == (
        "<AsyncQueue 'ok_name.v1-2' of list[int] maxsize=3>"
    )
    with pytest.raises(SchemaError):
        system.queue("objects", object)


async def test_a_queue_needs_a_running_system() -> None:
    system = ActorSystem()
    q = system.queue("q", int)
    with pytest.raises(NotRunning):
        await q.put(1)
    async with system:
        await q.put(1)
    with pytest.raises(NotRunning):
        await q.get()


async def test_closing_a_system_wakes_its_waiting_getters(url: str) -> None:
    system = await ActorSystem(url).start()
    getter = asyncio.create_task(system.queue("q", int).get())
    await asyncio.sleep(0.05)
    await system.close()
    with pytest.raises(TransportClosed):
        await asyncio.wait_for(getter, 5)


async def test_a_queue_outlives_the_systems_that_use_it_until_deleted(url: str) -> None:
    async with ActorSystem(url) as keeper:  # keeps a memory:// hub alive
        async with ActorSystem(url) as first:
            await first.queue("kept", int).put(1)
            await first.queue("kept", int).put(2)
        async with ActorSystem(url) as second:
            q = second.queue("kept", int)
            assert await q.qsize() == 2 and await q.unfinished() == 2
            assert await q.get() == 1
            await q.delete()
            assert await q.qsize() == 0 and await q.unfinished() == 0
            with pytest.raises(queue.Empty):
                await q.get_nowait()
            await q.put(3)  # a deleted queue can be used again
        assert await keeper.queue("kept", int).get_nowait() == 3


@pytest.mark.redis
async def test_redis_keys_of_a_queue() -> None:
    import redis.asyncio as aioredis

    base = require_redis()
    prefix = f"tactor-test:q{time.monotonic_ns()}"
    url = with_query(base, prefix=prefix)
    client = aioredis.Redis.from_url(base)

    async def keys() -> list[str]:
        return sorted(k.decode() for k in await client.keys(f"{prefix}:q:*"))

    try:
        async with ActorSystem(url) as system:
            q = system.queue("jobs", int)
            await q.put(1)
            assert await client.lrange(f"{prefix}:q:jobs", 0, -1) == [b"1"]
            assert await client.get(f"{prefix}:q:jobs:unfinished") == b"1"
        # Closing the system left the queue.
        assert await keys() == [f"{prefix}:q:jobs", f"{prefix}:q:jobs:unfinished"]
        async with ActorSystem(url) as system:
            q = system.queue("jobs", int)
            assert await q.get() == 1
            await q.task_done()
            getter = asyncio.create_task(q.get())
            await asyncio.sleep(0.05)
            getter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await getter
        # Drained and done, a cancelled get woken: nothing is left behind.
        assert await keys() == []
    finally:
        await client.aclose()
        drop_keys(base, prefix)
