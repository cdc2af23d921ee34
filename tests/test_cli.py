"""The ``tactor`` command on memory://: each command in a process of its own, its output
and its exit status; every mistake a user can make is one line, never a traceback."""

from __future__ import annotations

import contextlib
import json
import subprocess

import pytest

import tactor
from tactor.cli import Exit
from tests.cli import APP, command, environment
from tests.cli import tactor as run_tactor
from tests.cli_app import Pricing

SERVE = ["--serve", f"{APP}:Pricing", "--serve-args", '["eu"]']
FACTORY = ["--serve", f"{APP}:make"]
ITEMS = '[[{"sku": "a", "qty": 2}]]'

pytestmark = pytest.mark.slow


def one_line_error(ran: object, status: int, starts: str) -> str:
    from tests.cli import Ran

    assert isinstance(ran, Ran)
    assert ran.status == status, ran
    assert "Traceback" not in ran.err, ran
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1, ran
    assert lines[0].startswith(starts), ran
    return lines[0]


def test_call_prints_the_result_as_json() -> None:
    ran = run_tactor("call", *SERVE, "cli-pricing.quote", ITEMS)
    assert (ran.status, json.loads(ran.out)) == (0, "2.50")
    ran = run_tactor("call", *SERVE, "cli-pricing.quote", ITEMS, "--kwargs", '{"coupon": "half"}')
    assert json.loads(ran.out) == "1.25"
    ran = run_tactor("call", *SERVE, "cli-pricing.quote", ITEMS, "--json")
    assert ran.out == '"2.50"\n'


def test_broadcast_prints_every_providers_outcome() -> None:
    ran = run_tactor("call", *FACTORY, "cli-pricing.where", "--broadcast", "--json")
    assert ran.status == 0, ran
    outcomes = ran.json()
    assert sorted(o["value"] for o in outcomes) == ["eu", "us"]
    assert all(o["answered"] and o["provider"].startswith("cli-pricing@") for o in outcomes)
    ran = run_tactor("call", *FACTORY, "cli-pricing.fail", '["sold out"]', "--broadcast")
    assert ran.status == Exit.FAILED, ran
    lines = ran.out.strip().splitlines()
    assert len(lines) == 2
    assert all("\terror\ttests.cli_app.OutOfStock: sold out" in line for line in lines)


def test_tell_and_publish() -> None:
    ran = run_tactor("tell", *SERVE, "cli-pricing.restock", '["a", 3]', "--json")
    assert (ran.status, ran.json()) == (0, {"accepted": True})
    ran = run_tactor("publish", *SERVE, "PriceChanged", '{"sku": "a", "price": "2"}', "--json")
    assert (ran.status, ran.json()) == (0, {"topic": "PriceChanged", "reached": 1})
    ran = run_tactor("publish", *SERVE, "stock.eu.changed", '{"sku": "a", "qty": 1}')
    assert ran.status == 0 and "1 subscription(s) reached" in ran.out, ran


def test_ls_and_providers_list_live_providers() -> None:
    ran = run_tactor("ls", *FACTORY, "--json")
    assert ran.status == 0, ran
    (endpoint,) = ran.json()
    assert endpoint["endpoint"] == "cli-pricing" and endpoint["depth"] == 0
    assert len(endpoint["providers"]) == 2
    for provider in endpoint["providers"]:
        assert provider["node"] and provider["host"] and provider["pid"] > 0
        assert provider["age"] >= 0 and provider["since"]
        assert provider["actor"] == f"{APP}:Pricing"  # what each provider runs
    ran = run_tactor("providers", *FACTORY, "cli-pricing")
    assert ran.status == 0 and ran.out.startswith("cli-pricing  (2 providers, mailbox depth 0)")
    assert ran.out.count("  cli-pricing@") == 2
    assert ran.out.count(f"  {APP}:Pricing\n") == 2
    ran = run_tactor("providers", "nobody", "--json")
    assert (ran.status, ran.json()["providers"]) == (Exit.NOT_FOUND, [])
    assert run_tactor("ls").out == "no endpoint has a live provider\n"


def test_json_schema_is_the_librarys() -> None:
    ran = run_tactor("schema", f"{APP}:Pricing")
    assert ran.status == 0, ran
    assert ran.json() == json.loads(json.dumps(tactor.json_schema(Pricing)))
    assert set(ran.json()["events"]) == {"on_price", "on_stock"}


def test_remote_errors_are_one_line_with_the_remote_type() -> None:
    ran = run_tactor("call", *SERVE, "cli-pricing.fail", '["no a\\nleft"]')
    line = one_line_error(ran, Exit.FAILED, "tests.cli_app.OutOfStock: no a\\nleft")
    assert "cli-pricing.fail" in line
    ran = run_tactor("call", *SERVE, "cli-pricing.fail", '["x"]', "--json")
    assert ran.status == Exit.FAILED and ran.err == ""
    assert ran.json() == {
        "error": {"type": "tests.cli_app.OutOfStock", "message": "x"},
        "status": Exit.FAILED,
    }


@pytest.mark.parametrize(
    ("args", "status", "starts"),
    [
        (["cli-pricing.quote", '[[{"sku": "a", "qty": "two"}]]'], Exit.REJECTED,
         "InvalidArguments: "),
        (["cli-pricing.nope"], Exit.REJECTED, "UnknownMethod: "),
        (["cli-pricing.quote", "[1"], Exit.USAGE, "error: ARGS_JSON is not valid JSON"),
        (["cli-pricing.quote", '{"items": []}'], Exit.USAGE, "error: ARGS_JSON must be"),
        (["cli-pricing.where", "--kwargs", "[]"], Exit.USAGE, "error: --kwargs must be"),
        (["quote", "[]"], Exit.USAGE, "error: 'quote': expected ENDPOINT.METHOD"),
        (["nobody.where"], Exit.NOT_FOUND, "NoProvider: "),
        (["cli-pricing.hang", "--timeout", "0.3"], Exit.TIMEOUT, "CallTimeout: "),
        (["cli-pricing.where", "--provider", "cli-pricing@gone"], Exit.NOT_FOUND, "NoProvider: "),
    ],
)  # fmt: skip
def test_call_mistakes(args: list[str], status: int, starts: str) -> None:
    one_line_error(run_tactor("call", *SERVE, *args), status, starts)


def test_memory_without_serve_says_how_to_serve() -> None:
    line = one_line_error(run_tactor("call", "cli-pricing.where"), Exit.NOT_FOUND, "NoProvider")
    assert "memory:// lives in one process: give --serve module:Class" in line


@pytest.mark.parametrize(
    ("args", "status", "starts"),
    [
        (["call", "--serve", "no_such_module:X", "a.b"], Exit.USAGE, "error: cannot import"),
        (["call", "--serve", f"{APP}:Nope", "a.b"], Exit.USAGE, "error: 'tests.cli_app' has no"),
        (["call", "--serve", f"{APP}", "a.b"], Exit.USAGE, "error: 'tests.cli_app': expected"),
        (["call", "--serve", f"{APP}:not_a_factory", "a.b"], Exit.USAGE, "error: tests.cli_app"),
        (["call", "--serve", f"{APP}:Pricing", "a.b"], Exit.USAGE, "error: Pricing(region"),
        (["call", *SERVE[:3], '[1]', "a.b"], Exit.USAGE, "error: Pricing(region): "),
        (["run", f"{APP}:make", "--process"], Exit.USAGE,
         "error: tests.cli_app:make is a factory: it takes no ARGS_JSON, -n or --process"),
        (["run", f"{APP}:make", '["eu"]'], Exit.USAGE, "error: tests.cli_app:make is a factory"),
        (["run", f"{APP}:Pricing", "-n", "0"], Exit.USAGE, "error: -n 0"),
        (["schema", f"{APP}:make"], Exit.USAGE, "error: tests.cli_app:make is function"),
        (["ls", "--url", "amqp://x"], Exit.USAGE, "ConfigError: unknown transport URL"),
        (["ls", "--url", "redis://127.0.0.1:1/0"], Exit.TRANSPORT, "TransportError: "),
        (["dead-letters", *SERVE, "cli-pricing", "--discard", "7"], Exit.NOT_FOUND,
         "error: 'cli-pricing' has no dead letter '7'"),
        (["call"], Exit.USAGE, "tactor call: error: the following arguments are required"),
        (["run", f"{APP}:broken_factory"], Exit.FAILED,
         "error: tests.cli_app:broken_factory raised RuntimeError: no config"),
        (["call", "--serve", f"{APP}:Broken", "a.b"], Exit.FAILED,
         "error: tests.cli_app:Broken raised ValueError: bad setting"),
    ],
)  # fmt: skip
def test_command_mistakes(args: list[str], status: int, starts: str) -> None:
    ran = run_tactor(*args)
    assert ran.status == status, ran
    assert "Traceback" not in ran.err, ran
    assert starts in ran.err, ran


def test_url_comes_from_the_environment() -> None:
    env = environment(TACTOR_URL="redis://127.0.0.1:1/0")
    one_line_error(run_tactor("ls", env=env), Exit.TRANSPORT, "TransportError: ")


def test_run_on_memory_serves_until_sigint() -> None:
    import signal
    import subprocess

    from tests.cli import command

    with subprocess.Popen(
        command("run", f"{APP}:Pricing", '["eu"]', "-n", "2", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    ) as proc:
        try:
            assert proc.stdout is not None
            serving = json.loads(proc.stdout.readline())
            assert serving["event"] == "serving"
            assert len(serving["providers"]["cli-pricing"]) == 2
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out) == {"event": "stopped", "signal": "SIGINT"}
    assert "memory:// lives in this process" in err and "Traceback" not in err


def test_ctrl_c_drains_process_providers_without_a_traceback() -> None:
    """A terminal's Ctrl-C is a SIGINT to the whole process group: the command, its fork
    server and every child. The parent drains the children; none dies of it on its own."""
    import os
    import signal

    from tests.cli import command

    with subprocess.Popen(
        command("run", f"{APP}:Pricing", '["eu"]', "-n", "2", "--process", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
        start_new_session=True,  # a group of its own, as a terminal's foreground job
    ) as proc:
        try:
            assert proc.stdout is not None
            serving = json.loads(proc.stdout.readline())
            assert len(serving["providers"]["cli-pricing"]) == 2
            os.killpg(proc.pid, signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):  # every process it started
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out) == {"event": "stopped", "signal": "SIGINT"}
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_python_dash_m_and_version() -> None:
    ran = run_tactor("--version")
    assert (ran.status, ran.out.strip()) == (0, f"tactor {tactor.__version__}")


def test_the_console_script_is_installed() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "tactor"  # pip's script for [project.scripts]
    done = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"tactor {tactor.__version__}")


def test_a_reader_that_goes_away_ends_the_output_quietly() -> None:
    """``tactor schema ... | head -c0``: the pipe closes before the output is written (as
    it does when ``head`` had enough of a longer one); no traceback, status 141."""
    process = subprocess.Popen(
        command("schema", f"{APP}:Pricing", "--format", "asyncapi"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(),
    )
    with process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # before the command (still importing) writes anything
        err = process.stderr.read().decode()
        assert process.wait(timeout=30) == Exit.BROKEN_PIPE
    assert "Traceback" not in err and "BrokenPipe" not in err, err
