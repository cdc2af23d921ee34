"""The ``tactor`` command: parsing, running a command, and what it exits with.

Every failure a user can cause — bad JSON, an unknown endpoint or method,
wrong types, no provider, a timeout, an unreachable Redis — is printed as one
line, ``Type: message`` (the remote type, for an error a method raised), with
an exit status that says what failed (:class:`Exit`); never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from enum import IntEnum
from typing import Any, NoReturn

import tactor

from .errors import CliError

__all__ = ["Exit", "main", "status_of"]


class Exit(IntEnum):
    """The exit statuses of ``tactor`` (docs/cli.md has the table)."""

    OK = 0
    FAILED = 1  # the method raised (or, in a broadcast, a provider answered with an error)
    USAGE = 2  # the command line: bad JSON, a target that cannot be loaded, a bad URL
    REJECTED = 3  # the provider rejected the call: wrong types, unknown method, too large
    NOT_FOUND = 4  # no live provider (or no such provider or dead letter)
    TIMEOUT = 5  # no answer before the deadline (or a mailbox stayed full)
    TRANSPORT = 6  # the transport cannot be reached, or failed
    INTERRUPTED = 130  # SIGINT (Ctrl-C) while a command other than run was waiting
    BROKEN_PIPE = 141  # the output's reader went away (as 128 + SIGPIPE, like a shell's cat)


def status_of(exc: BaseException) -> Exit:
    """The exit status for an error."""
    if isinstance(exc, CliError):
        return Exit(exc.status)
    if isinstance(exc, tactor.ConfigError | tactor.SchemaError):
        return Exit.USAGE
    if isinstance(exc, tactor.DecodeError | tactor.UnknownMethod | tactor.PayloadTooLarge):
        return Exit.REJECTED
    if isinstance(exc, tactor.NoProvider):
        return Exit.NOT_FOUND
    if isinstance(exc, tactor.CallTimeout):
        return Exit.TIMEOUT
    if isinstance(exc, tactor.TransportError | tactor.NotRunning):
        return Exit.TRANSPORT
    return Exit.FAILED


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line; a remote error by its remote type."""
    if isinstance(exc, tactor.RemoteError):
        text = str(exc)  # "remote.Type: message in endpoint.method (provider p)"
    elif isinstance(exc, CliError):
        text = f"error: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text.replace("\r", "").replace("\n", "\\n")


def error_json(exc: BaseException) -> dict[str, Any]:
    """An error as JSON data (``--json`` output)."""
    if isinstance(exc, tactor.RemoteError):
        kind, message = exc.remote_type, exc.remote_message
    elif isinstance(exc, CliError):
        kind, message = "error", str(exc)
    else:
        kind, message = type(exc).__name__, str(exc)
    return {"type": kind, "message": message}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(Exit.USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _common(parser: argparse.ArgumentParser) -> None:
    default = os.environ.get("TACTOR_URL") or "memory://"
    parser.add_argument(
        "--url", default=default, help="transport URL (default: $TACTOR_URL, else memory://)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _client(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument(
        "--serve",
        metavar="TARGET",
        help="serve module:Class (or module:factory) in this process first: what memory:// "
        "needs, whose providers live in one process",
    )
    parser.add_argument(
        "--serve-args", metavar="JSON", help="the constructor arguments of --serve's class"
    )


def _calling(parser: argparse.ArgumentParser) -> None:
    _client(parser)
    parser.add_argument("target", metavar="ENDPOINT.METHOD")
    parser.add_argument("args", metavar="ARGS_JSON", nargs="?", default="[]")
    parser.add_argument("--kwargs", metavar="JSON", help="keyword arguments, a JSON object")
    parser.add_argument("--timeout", type=float, metavar="S", help="the deadline, in seconds")
    parser.add_argument("--provider", metavar="ID", help="address this provider only")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tactor", description="Run, inspect and call tactor services.")
    parser.add_argument("--version", action="version", version=f"tactor {tactor.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="serve an actor class (or a factory's system)")
    _common(run)
    run.add_argument("target", metavar="module:Class|module:factory")
    run.add_argument("args", metavar="ARGS_JSON", nargs="?", help="constructor arguments")
    run.add_argument("-n", "--providers", type=int, default=1, metavar="N")
    run.add_argument(
        "--process", action="store_true", help="each provider in a supervised child process"
    )
    run.add_argument("--drain-timeout", type=float, default=10.0, metavar="S")
    run.add_argument("--log-level", default="INFO", help="of the 'tactor' logger (INFO)")

    for name, what in (("ls", "list endpoints and their providers"), ("providers", "")):
        sub = commands.add_parser(name, help=what or "list the providers of one endpoint")
        _client(sub)
        if name == "providers":
            sub.add_argument("endpoint", metavar="ENDPOINT")

    call = commands.add_parser("call", help="call a method by name, print the result")
    _calling(call)
    call.add_argument("--broadcast", action="store_true", help="call every live provider")
    _calling(commands.add_parser("tell", help="send a one-way message by name"))

    publish = commands.add_parser("publish", help="publish an event")
    _client(publish)
    publish.add_argument("topic", metavar="TOPIC")
    publish.add_argument("event", metavar="EVENT_JSON")
    publish.add_argument("--type", dest="type_name", help="the event's type name")

    schema = commands.add_parser("schema", help="print the interface of actor classes")
    schema.add_argument("targets", metavar="module:Class", nargs="+")
    schema.add_argument("--format", choices=["jsonschema", "asyncapi"], default="jsonschema")
    schema.add_argument("--title", help="the AsyncAPI document's title")
    schema.add_argument("--api-version", default="0.1.0", help="the AsyncAPI info.version")
    _common(schema)

    letters = commands.add_parser("dead-letters", help="list, replay or discard dead letters")
    _client(letters)
    letters.add_argument("endpoint", metavar="ENDPOINT")
    action = letters.add_mutually_exclusive_group()
    action.add_argument("--replay", metavar="ID")
    action.add_argument("--discard", metavar="ID")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tactor`` command with ``argv`` (default: ``sys.argv[1:]``); its exit status."""
    options = build_parser().parse_args(argv)
    from .commands import COMMANDS  # the commands import the rest only when run

    try:
        return int(asyncio.run(COMMANDS[options.command](options)))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return Exit.INTERRUPTED
    except BrokenPipeError:  # the reader went away (`tactor schema ... | head`): as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return Exit.BROKEN_PIPE
    except (tactor.TactorError, CliError) as exc:
        status = status_of(exc)
        if options.json:
            print(json.dumps({"error": error_json(exc), "status": status}))
        else:
            hint = _hint(options, status)
            print(one_line(exc) + hint, file=sys.stderr)
        return status


def _hint(options: argparse.Namespace, status: Exit) -> str:
    memory = options.url.startswith("memory:")
    if status is Exit.NOT_FOUND and memory and not getattr(options, "serve", None):
        return " (memory:// lives in one process: give --serve module:Class, or --url redis://…)"
    return ""
