"""Dead letters: a message attempted max_deliveries times, or unreadable, is moved aside
(with a log line) while others keep flowing; it can be listed, replayed and discarded."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field

import orjson
import pytest

from tactor import (
    Actor,
    ActorSystem,
    BlockingSystem,
    ConfigError,
    DeadLetter,
    DeadLettered,
    subscribe,
)
from tactor.transports.base import endpoint_mailbox
from tests.conftest import with_query
from tests.helpers import eventually


@dataclass
class Log:
    started: list[str] = field(default_factory=list)  # the provider ids that began `stall`
    handled: list[str] = field(default_factory=list)
    fixed: bool = False


@dataclass
class Ping:
    n: int


class Fragile(Actor, name="fragile"):
    def __init__(self, log: Log) -> None:
        self.log = log

    async def stall(self, tag: str) -> None:
        """Hangs until its provider is stopped (then cancelled), until the cause is fixed."""
        self.log.started.append(self.ref.id)
        if not self.log.fixed:
            await asyncio.Event().wait()
        self.log.handled.append(tag)

    async def echo(self, n: int) -> int:
        return n


class Listening(Fragile, name="listening"):
    """The same, with an event handler: its runner takes mailbox messages through a pump."""

    @subscribe
    async def on_ping(self, event: Ping) -> None:
        pass


async def stall_until_dead_lettered(
    system: ActorSystem,
    cls: type[Fragile],
    log: Log,
    times: int,
    sent: Awaitable[None] | None = None,
) -> DeadLetter:
    """Tell ``stall`` (or await ``sent``, which sends it) and stop its provider mid-message
    ``times`` times; two providers serve throughout (a replacement starts for each one
    stopped), and the other one answers."""
    refs = {ref.id: ref for ref in [await system.spawn(cls, log) for _ in range(2)]}
    await (system.tell(cls.stall, "poison") if sent is None else sent)

    async def started() -> int:
        return len(log.started)

    calls = []
    for attempt in range(1, times + 1):
        await eventually(started, lambda n: n == attempt)  # noqa: B023 (read at once)
        calls.append(asyncio.create_task(system.call(cls.echo, attempt)))
        if cls is Fragile:  # the other provider answers while the stalled one stalls
            assert await calls[-1] == attempt
        # (With event handlers, a busy actor's pump holds one waiting message: a call may
        # wait in the stalled provider until it stops, then go back uncounted.)
        await system.stop(refs.pop(log.started[-1]))  # cancelled after stop_grace, not acked
        ref = await system.spawn(cls, log)
        refs[ref.id] = ref
    (letter,) = await eventually(lambda: system.dead_letters(cls), lambda ls: len(ls) == 1)
    assert await asyncio.gather(*calls) == list(range(1, times + 1))
    return letter


@pytest.mark.in_process
@pytest.mark.parametrize("cls", [Fragile, Listening])
async def test_a_message_stalling_every_provider_goes_to_the_dead_letters(
    url: str, cls: type[Fragile], caplog: pytest.LogCaptureFixture
) -> None:
    log = Log()
    async with ActorSystem(url, stop_grace=0.05, max_deliveries=3) as system:
        with caplog.at_level(logging.WARNING, logger="tactor"):
            letter = await stall_until_dead_lettered(system, cls, log, 3)
        endpoint = cls.__tactor_schema__.endpoint
        assert (letter.endpoint, letter.reason, letter.attempts) == (endpoint, "max_deliveries", 3)
        assert letter.detail == "attempted 3 times without an acknowledgement (max_deliveries=3)"
        assert (letter.method, letter.kind, letter.args) == ("stall", "tell", {"tag": "poison"})
        assert isinstance(letter.message_id, str) and letter.message_id in letter.payload.decode()
        assert orjson.loads(letter.payload)["m"] == "stall"
        assert len(log.started) == 3  # attempted three times, then never delivered again
        assert await system.call(cls.echo, 9) == 9
        assert len(log.started) == 3 and log.handled == []
        (line,) = [r for r in caplog.records if "dead letters" in r.getMessage()]
        assert line.levelno == logging.WARNING
        for part in (f"{endpoint}.stall", letter.message_id, "max_deliveries", "attempted 3"):
            assert part in line.getMessage()


@pytest.mark.in_process
async def test_a_call_moved_to_the_dead_letters_is_answered_at_once(url: str) -> None:
    log = Log()
    async with ActorSystem(url, stop_grace=0.05, max_deliveries=2) as system:
        calls: list[asyncio.Task[None]] = []

        async def sent() -> None:  # called once the providers run
            calls.append(asyncio.create_task(system.call(Fragile.stall, "poison", timeout=60)))

        letter = await stall_until_dead_lettered(system, Fragile, log, 2, sent())
        with pytest.raises(DeadLettered) as raised:
            await asyncio.wait_for(calls[0], 10)  # not at its 60 s deadline
        message = str(raised.value)
        assert "dead letters of 'fragile'" in message and "attempted 2 times" in message
        assert (letter.kind, letter.method) == ("call", "stall")


@pytest.mark.in_process
async def test_replay_puts_a_letter_back_to_be_handled_afresh(url: str) -> None:
    log = Log()
    async with ActorSystem(url, stop_grace=0.05, max_deliveries=1) as system:
        letter = await stall_until_dead_lettered(system, Fragile, log, 1)
        log.fixed = True  # the cause is fixed
        assert await system.replay(letter)
        assert await system.dead_letters(Fragile) == []

        async def handled() -> list[str]:
            return log.handled

        assert await eventually(handled, lambda h: h == ["poison"]) == ["poison"]
        assert not await system.replay(letter)  # it is no longer a dead letter
        assert not await system.discard(letter)


async def test_an_unreadable_message_is_kept_with_its_reason(url: str) -> None:
    """Bytes that are no message at all, and a request of another envelope version (which
    is still answered 'malformed', since it says where to): both are dead letters."""
    async with ActorSystem(url) as system:
        await system.spawn(Fragile, Log())
        replies: asyncio.Queue[bytes] = asyncio.Queue()
        inbox = await system.transport.open_inbox("test-reader", replies.put_nowait, print)
        other_version = {"v": 99, "k": "call", "id": "m-1", "r": "test-reader", "m": "echo"}
        try:
            await system.transport.deliver(endpoint_mailbox("fragile"), b"\xff not json")
            await system.transport.deliver(endpoint_mailbox("fragile"), orjson.dumps(other_version))
            reply = orjson.loads(await asyncio.wait_for(replies.get(), 10))
        finally:
            await inbox.close()
        assert reply["e"]["code"] == "malformed"
        junk, newer = await eventually(
            lambda: system.dead_letters(Fragile), lambda ls: len(ls) == 2
        )
        assert (junk.reason, junk.attempts, junk.payload) == ("malformed", 1, b"\xff not json")
        assert (junk.message_id, junk.method, junk.kind, junk.args) == (None, None, None, None)
        assert "JSON" in junk.detail
        assert (newer.reason, newer.message_id, newer.method, newer.kind) == (
            "malformed", "m-1", "echo", "call",
        )  # fmt: skip
        assert "version 99" in newer.detail and newer.args is None
        assert await system.call(Fragile.echo, 1) == 1  # still serving


async def test_discard_removes_a_letter(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Fragile, Log())
        for junk in (b"\x00one", b"\x00two"):
            await system.transport.deliver(endpoint_mailbox("fragile"), junk)
        one, two = await eventually(lambda: system.dead_letters(Fragile), lambda ls: len(ls) == 2)
        assert await system.discard(one)
        assert not await system.discard(one)
        assert await system.dead_letters(Fragile) == [two]


@pytest.mark.in_process
async def test_the_oldest_letters_go_first_with_a_log_line(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with ActorSystem(url, max_dead_letters=2) as system:
        await system.spawn(Fragile, Log())
        with caplog.at_level(logging.WARNING, logger="tactor"):
            for n in range(3):
                await system.transport.deliver(endpoint_mailbox("fragile"), b"\x00%d" % n)
            await eventually(
                lambda: system.dead_letters(Fragile),
                lambda ls: [x.payload for x in ls] == [b"\x001", b"\x002"],
            )
        dropped = [r.getMessage() for r in caplog.records if "dropped the oldest" in r.getMessage()]
        assert len(dropped) == 1 and "max_dead_letters=2" in dropped[0], dropped


async def test_limits_come_from_the_url_and_the_system_arguments_win(url: str) -> None:
    async with ActorSystem(with_query(url, max_deliveries="2", max_dead_letters="9")) as system:
        assert (system.max_deliveries, system.max_dead_letters) == (2, 9)
    async with ActorSystem(with_query(url, max_deliveries="2"), max_deliveries=4) as system:
        assert (system.max_deliveries, system.max_dead_letters) == (4, 1000)
    async with ActorSystem(url) as system:
        assert (system.max_deliveries, system.max_dead_letters) == (5, 1000)


@pytest.mark.parametrize("name", ["max_deliveries", "max_dead_letters"])
def test_bad_limits_are_config_errors_that_name_them(url: str, name: str) -> None:
    with pytest.raises(ConfigError, match=rf"ActorSystem\({name}=0\): expected a whole number"):
        ActorSystem(url, **{name: 0})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=rf"option {name}='x': expected a whole number >= 1"):
        ActorSystem(with_query(url, **{name: "x"}))


def test_the_blocking_system_lists_replays_and_discards_them(url: str) -> None:
    with BlockingSystem(url) as system:
        system.spawn(Fragile, Log())
        for junk in (b"\x00a", b"\x00b"):
            system.run(system.aio.transport.deliver(endpoint_mailbox("fragile"), junk))
        assert system.call(Fragile.echo, 1) == 1  # one provider: handled after both
        one, two = system.dead_letters(Fragile)
        assert system.discard(one) and system.replay(two)
        assert system.call(Fragile.echo, 2) == 2  # after the replayed one: unreadable still
        (again,) = system.dead_letters(Fragile)
        assert again.payload == b"\x00b" and again.id != two.id
