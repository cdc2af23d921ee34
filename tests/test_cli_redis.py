"""The ``tactor`` command across processes over Redis: ``tactor run`` in one process, the
other commands in others; SIGTERM drains (the message in hand is answered and acknowledged)
and leaves nothing in Redis; so does a program of its own that calls ``system.serve()``."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import redis

from tactor import ActorSystem
from tactor.cli import Exit
from tactor.transports.base import endpoint_mailbox
from tests.cli import APP, Ran, command, environment, tactor
from tests.conftest import drop_keys, require_redis, with_query
from tests.helpers import eventually

pytestmark = [pytest.mark.redis, pytest.mark.slow]


class Prefix:
    def __init__(self, base: str, prefix: str) -> None:
        self.base = base
        self.prefix = prefix
        self.url = with_query(base, prefix=prefix)

    def keys(self) -> list[str]:
        client = redis.Redis.from_url(self.base)
        try:
            return sorted(k.decode() for k in client.scan_iter(f"{self.prefix}:*"))
        finally:
            client.close()


@pytest.fixture
def space() -> Iterator[Prefix]:
    base = require_redis()
    prefix = f"tactor-test:{uuid.uuid4().hex[:12]}"
    yield Prefix(base, prefix)
    drop_keys(base, prefix)


class Served:
    """A serving process (``tactor run`` or a program of its own); ended by pid at the end."""

    def __init__(self, args: list[str], ready: str) -> None:
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(),
        )
        self.first = self.line()
        assert self.first.startswith(ready), (self.first, self.rest())

    def line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def err_line(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.readline()

    def rest(self) -> tuple[str, str]:
        return self.proc.communicate(timeout=30)

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def test_run_ls_call_and_sigterm_leave_nothing(space: Prefix) -> None:
    served = Served(command("run", "--url", space.url, f"{APP}:Pricing", '["eu"]', "-n", "2"),
                    "serving cli-pricing: ")  # fmt: skip
    try:
        ran = tactor("ls", "--url", space.url, "--json")
        assert ran.status == 0, ran
        (endpoint,) = ran.json()
        assert endpoint["endpoint"] == "cli-pricing" and endpoint["depth"] == 0
        assert {p["pid"] for p in endpoint["providers"]} == {served.proc.pid}
        assert len({p["id"] for p in endpoint["providers"]}) == 2
        assert len({p["node"] for p in endpoint["providers"]}) == 1

        ran = tactor("call", "--url", space.url, "cli-pricing.quote", '[[{"sku":"a","qty":4}]]')
        assert (ran.status, json.loads(ran.out)) == (0, "5.00")
        ran = tactor("call", "--url", space.url, "cli-pricing.where", "--broadcast", "--json")
        assert [o["value"] for o in ran.json()] == ["eu", "eu"]
        ran = tactor("tell", "--url", space.url, "cli-pricing.restock", '["a", 2]')
        assert ran.status == 0, ran
        ran = tactor("publish", "--url", space.url, "PriceChanged", '{"sku":"a","price":"3"}')
        assert ran.status == 0 and "does not count subscribers" in ran.out, ran
        ran = tactor("call", "--url", space.url, "cli-pricing.quote", "[[]]", "--kwargs", "{}")
        assert json.loads(ran.out) == "0"

        served.proc.send_signal(signal.SIGTERM)
        _, err = served.rest()
        assert served.proc.returncode == 0, err
        assert "SIGTERM: draining 2 provider(s)" in err and "Traceback" not in err
        assert space.keys() == []
        ran = tactor("providers", "--url", space.url, "cli-pricing")
        assert ran.status == Exit.NOT_FOUND, ran
    finally:
        served.end()


def test_sigterm_drains_the_message_in_hand(space: Prefix) -> None:
    served = Served(command("run", "--url", space.url, f"{APP}:Slow"), "serving cli-slow: ")
    try:
        assert served.line().startswith("SIGINT or SIGTERM")
        caller = subprocess.Popen(
            command("call", "--url", space.url, "cli-slow.work", "[21]", "--timeout", "30"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(),
        )  # fmt: skip
        try:
            assert served.line() == "working 21\n"  # the message is in hand
            served.proc.send_signal(signal.SIGTERM)
            while "draining" not in (line := served.err_line()):
                assert line, "the run process ended without draining"
            assert served.proc.stdin is not None
            served.proc.stdin.write("go\n")  # now let the method finish
            served.proc.stdin.flush()
            out, err = caller.communicate(timeout=30)
        finally:
            if caller.poll() is None:
                caller.kill()
            caller.wait()
        assert (caller.returncode, out, err) == (0, "42\n", "")
        _, err = served.rest()
        assert served.proc.returncode == 0, err
        assert space.keys() == []  # no registry entry, no mailbox, nothing
    finally:
        served.end()


def test_serve_in_a_program_of_its_own_drains_and_leaves_nothing(space: Prefix) -> None:
    served = Served([sys.executable, "-m", "tests.cli_app", space.url], "ready")
    try:
        assert space.keys() != []  # registered: there is something to clean up

        async def call_while_terminated() -> int:
            async with ActorSystem(space.url) as me:
                answer = asyncio.ensure_future(me.call_json("cli-slow", "work", [5], timeout=30))
                line = await asyncio.to_thread(served.line)
                assert line == "working 5\n"
                served.proc.send_signal(signal.SIGTERM)
                await eventually(
                    lambda: me.endpoint_info("cli-slow"), lambda found: not found.providers
                )  # unregistered at once: draining
                assert served.proc.stdin is not None
                served.proc.stdin.write("go\n")
                served.proc.stdin.flush()
                result: int = await answer
                return result

        assert asyncio.run(call_while_terminated()) == 10
        out, err = served.rest()
        assert (served.proc.returncode, out) == (0, "stopped by SIGTERM\n"), err
        assert space.keys() == []
    finally:
        served.end()


def test_run_a_factory(space: Prefix) -> None:
    served = Served(command("run", "--url", space.url, f"{APP}:make", "--json"), "{")
    try:
        serving = json.loads(served.first)
        assert serving["event"] == "serving" and len(serving["providers"]["cli-pricing"]) == 2
        ran = tactor("call", "--url", space.url, "cli-pricing.where", "--broadcast")
        assert ran.status == 0 and sorted(line.split("\t")[2] for line in ran.out.splitlines()) == [
            '"eu"',
            '"us"',
        ]
        served.proc.send_signal(signal.SIGTERM)
        out, err = served.rest()
        assert served.proc.returncode == 0, err
        assert json.loads(out) == {"event": "stopped", "signal": "SIGTERM"}
        assert space.keys() == []
    finally:
        served.end()


async def test_dead_letters_listed_replayed_and_discarded(space: Prefix) -> None:
    from tests.cli_app import Pricing

    url = with_query(space.url, max_deliveries="1")
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        for payload in (b"not json", b"[1]"):
            await system.transport.deliver(endpoint_mailbox("cli-pricing"), payload)
        letters = await eventually(lambda: system.dead_letters(Pricing), lambda ls: len(ls) == 2)

        def cli(*args: str) -> Ran:
            return tactor("dead-letters", "--url", space.url, "cli-pricing", *args)

        ran = await asyncio.to_thread(cli, "--json")
        assert ran.status == 0, ran
        listed = ran.json()
        assert [x["id"] for x in listed] == [x.id for x in letters]
        assert {x["reason"] for x in listed} == {"malformed"}
        ran = await asyncio.to_thread(cli)  # a line each: what it was, and why it is here
        first, second = ran.out.splitlines()
        assert first.startswith(letters[0].id) and second.startswith(letters[1].id)
        assert first.endswith(f"malformed (1 attempt): {letters[0].detail}")
        assert "(8 bytes)" in first  # the detail says what could not be read
        ran = await asyncio.to_thread(cli, "--discard", letters[0].id)
        assert ran.status == 0 and ran.out == f"discarded {letters[0].id}\n"
        ran = await asyncio.to_thread(cli, "--replay", letters[1].id, "--json")
        assert ran.json() == {"replayed": letters[1].id}
        ran = await asyncio.to_thread(cli, "--replay", letters[1].id)
        assert ran.status == Exit.NOT_FOUND
        # The replayed letter is read again (and, unreadable, set aside again).
        await eventually(lambda: system.dead_letters(Pricing), lambda ls: len(ls) == 1)


def test_run_with_process_providers(space: Prefix) -> None:
    args = ["run", "--url", space.url, f"{APP}:Pricing", '["eu"]', "-n", "2", "--process"]
    served = Served(command(*args), "serving cli-pricing: ")
    try:
        ran = tactor("providers", "--url", space.url, "cli-pricing", "--json")
        assert ran.status == 0, ran
        pids = {p["pid"] for p in ran.json()["providers"]}
        assert len(pids) == 2 and served.proc.pid not in pids  # each in a child of its own
        ran = tactor("call", "--url", space.url, "cli-pricing.where", "--broadcast", "--json")
        assert [o["value"] for o in ran.json()] == ["eu", "eu"]
        served.proc.send_signal(signal.SIGTERM)
        _, err = served.rest()
        assert served.proc.returncode == 0, err
        assert "SIGTERM: draining 2 provider(s)" in err
        assert space.keys() == []
    finally:
        served.end()
