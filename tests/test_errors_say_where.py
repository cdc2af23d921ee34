"""Errors name the endpoint, method, argument or option concerned, and say what to do."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tactor import (
    Actor,
    ActorSystem,
    CallTimeout,
    ConfigError,
    EncodeError,
    NoProvider,
    TactorError,
    open_transport,
)
from tests.conftest import redis_url


class Adder(Actor, name="adder"):
    async def add(self, x: int, label: str = "") -> int:
        return x

    async def stall(self) -> None:
        import asyncio

        await asyncio.Event().wait()


@dataclass
class Huge:
    n: int


async def test_an_argument_json_cannot_hold_is_named(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Adder)
        with pytest.raises(EncodeError, match=r"adder\.add: argument 'x': .*64-bit"):
            await system.call(Adder.add, 2**70)
        with pytest.raises(EncodeError, match=r"adder\.add: argument 'label': .*surrogates"):
            await system.call(Adder.add, 1, "\udc80")
        with pytest.raises(EncodeError, match=r"the event Huge on 'Huge': .*64-bit"):
            await system.publish(Huge(2**70))
        assert await system.call(Adder.add, 3) == 3


async def test_call_timeout_says_what_the_deadline_was(url: str) -> None:
    async with ActorSystem(url, stop_grace=0.1) as system:  # the stalled handler is cancelled
        await system.spawn(Adder)
        with pytest.raises(CallTimeout, match=r"adder\.stall: no reply .*\(deadline 0\.2 s\)"):
            await system.call(Adder.stall, timeout=0.2)


async def test_nobody_serving_is_no_provider_for_call_tell_and_broadcast(url: str) -> None:
    async with ActorSystem(url) as system:
        for attempt in (
            system.call(Adder.add, 1),
            system.tell(Adder.add, 1),
            system.broadcast(Adder.add, 1),
        ):
            with pytest.raises(NoProvider, match="'adder'"):
                await attempt


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("mailboxsize=3", r"unknown memory:// option 'mailboxsize' \(did you mean 'mailbox_size'"),
        ("mailbox_size=x", r"memory:// option mailbox_size='x': expected a whole number >= 1"),
        ("mailbox_size=0", r"mailbox_size='0': expected a whole number >= 1"),
        ("subscription_buffer=-1", r"subscription_buffer='-1'"),
    ],
)
def test_memory_url_options_are_checked(query: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        open_transport(f"memory://somewhere?{query}")
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, TactorError)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("mailboxsize=3", r"unknown redis:// option 'mailboxsize' \(did you mean 'mailbox_size'"),
        ("ttl=abc", r"redis:// option ttl='abc': expected a number of seconds > 0"),
        ("ttl=0", r"ttl='0'"),
        ("prefetch_window=-1", r"prefetch_window='-1': expected a number of seconds >= 0"),
        ("prefix=bad prefix", r"prefix='bad prefix': expected letters, digits"),
        ("prefix=a*b", r"prefix='a\*b'"),
        ("socket_timeout=abc", r"redis:// URL option: .*socket_timeout"),
        ("nonsense=1", r"unknown redis:// option 'nonsense'"),
    ],
)
def test_redis_url_options_are_checked_before_connecting(query: str, message: str) -> None:
    pytest.importorskip("redis")
    with pytest.raises(ConfigError, match=message):
        open_transport(f"redis://127.0.0.1:1/0?{query}")  # nothing listens: no connection made


def test_redis_py_options_still_pass() -> None:
    pytest.importorskip("redis")
    transport = open_transport(f"{redis_url()}?socket_connect_timeout=1&prefix=app:v2&ttl=5")
    assert transport.prefix == "app:v2" and transport.ttl == 5.0  # type: ignore[attr-defined]


def test_unknown_scheme_and_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown transport URL 'amqp://x'"):
        open_transport("amqp://x")
    with pytest.raises(ConfigError, match=r"timeout=0"):
        ActorSystem(timeout=0)
    with pytest.raises(ConfigError, match=r"max_payload=-1"):
        ActorSystem(max_payload=-1)
