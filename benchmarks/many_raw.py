"""The floor of the many-providers call row: what raw redis-py pays for the same spread.

A call to the endpoint of 1,000 providers in 5 processes lands on whichever of the
5 processes waits longest, so each call wakes a process that has slept through the
4 calls before it; a call to an endpoint with one provider wakes the same process
every time. This measures that difference without tactor: ``PROCESSES`` raw
consumer processes read one stream in one consumer group (blocking ``XREADGROUP``,
``COUNT 1``) and one more reads a stream of its own; each answers an entry with an
``RPUSH`` to the list it names and an ``XACK``, pipelined. The caller (this process,
redis-py, synchronous) ``XADD``\\ s an entry and ``BLPOP``\\ s the answer, alternating
between the two streams call by call, as the tactor figures are measured.

``python benchmarks/many_raw.py serve URL STREAM`` is one consumer process.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import redis

GROUP = "g"


def serve(url: str, stream: str) -> None:
    client = redis.Redis.from_url(url)
    name = f"c{os.getpid()}"
    print("ready", flush=True)
    while True:
        for _, entries in client.xreadgroup(GROUP, name, {stream: ">"}, count=1, block=0):
            for entry, fields in entries:
                answer = client.pipeline(transaction=False)
                answer.rpush(fields[b"reply"], b"ok")
                answer.xack(stream, GROUP, entry)
                answer.execute()


def floor(url: str, processes: int, iterations: int) -> dict[str, float]:
    """Median µs of a raw call to the stream of ``processes`` consumer processes
    (``many_us``) and to the stream of one (``one_us``)."""
    client = redis.Redis.from_url(url)
    for stream in ("raw-many", "raw-one"):
        client.xgroup_create(stream, GROUP, id="$", mkstream=True)
    plan = ["raw-many"] * processes + ["raw-one"]
    consumers = [
        subprocess.Popen(
            [sys.executable, __file__, "serve", url, stream],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for stream in plan
    ]
    try:
        for consumer in consumers:
            assert consumer.stdout is not None
            if not consumer.stdout.readline().startswith("ready"):
                raise RuntimeError("a raw consumer did not start")

        def call(stream: str) -> float:
            started = time.perf_counter()
            client.xadd(stream, {"reply": "raw-reply"})
            client.blpop(["raw-reply"], timeout=10)
            return (time.perf_counter() - started) * 1e6

        for _ in range(50):  # warm
            call("raw-many")
            call("raw-one")
        many: list[float] = []
        one: list[float] = []
        for _ in range(3 * iterations):  # in turn, call by call, as the tactor figures
            many.append(call("raw-many"))
            one.append(call("raw-one"))
        return {"many_us": statistics.median(many), "one_us": statistics.median(one)}
    finally:
        for consumer in consumers:  # each ended by pid
            consumer.kill()
            consumer.wait(timeout=10)
        client.close()


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve"] or len(sys.argv) != 4:
        sys.exit("usage: python benchmarks/many_raw.py serve URL STREAM")
    serve(sys.argv[2], sys.argv[3])
