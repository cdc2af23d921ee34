"""The pymq README example, renamed to tactor: shared by the test and a provider process.

``serve(url)`` inits, prints ``ready`` and serves until stdin closes. Start it
with ``python -c "from tests.pymq_style import serve; serve(URL)"`` — not with
``-m``, which would run this module as ``__main__`` and serve its functions
under ``__main__.*`` names (as with pymq, endpoints of unnamed remotes are
named after their module).
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass

import tactor


@dataclass
class MyEvent:
    text: str


received: list[MyEvent] = []
got_event = threading.Event()


@tactor.subscriber
def on_event(event: MyEvent) -> None:
    received.append(event)
    got_event.set()


@tactor.remote("product_remote")
def product(a: int, b: int) -> int:
    return a * b


@tactor.remote
def greet(name: str, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


@tactor.remote
def events_seen() -> list[str]:
    """What this process's subscriber received (to check delivery across processes)."""
    return [event.text for event in received]


class Remote:
    def __init__(self, who: str) -> None:
        self.who = who

    def echo(self, param: str) -> str:
        return f"echo from {self.who}: {param}"


def serve(url: str) -> None:
    tactor.init(url)
    tactor.expose(Remote("child").echo, "remote_echo")
    print("ready", flush=True)
    sys.stdin.read()
    tactor.shutdown()
