"""tactor without async: the module-level API (for scripts and pymq users) and a queue.

    python examples/sync_module_api.py [redis://127.0.0.1:6379/0]

With a Redis URL, run it in two terminals: both processes serve ``product``
and each broadcast (``multi=True``) answers from both.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass

import tactor


@dataclass
class Greeting:
    text: str


@tactor.remote("product_remote")
def product(a: int, b: int) -> int:
    return a * b


greeted = threading.Event()


@tactor.subscriber
def on_greeting(event: Greeting) -> None:  # a plain def: runs in a worker thread
    print("event:", event.text)
    greeted.set()


def main(url: str) -> None:
    tactor.init(url)
    try:
        print("by name:", tactor.stub("product_remote", timeout=2)(6, 7))
        print("typed by callable:", tactor.stub(product)(a=3, b=4))
        print("every provider:", tactor.stub(product, multi=True, timeout=2)(2, 5))
        tactor.publish(Greeting("hello"))
        greeted.wait(timeout=2.0)  # let the event's handler print
        jobs = tactor.queue("example-jobs", int)
        for n in range(3):
            jobs.put(n)
        got = []
        for _ in range(3):
            got.append(jobs.get(timeout=1))
            jobs.task_done()  # as with queue.Queue; a finished queue leaves no key behind
        print("queue:", got)
    finally:
        tactor.shutdown()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "memory://")
