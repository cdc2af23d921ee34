"""The public surface: an explicit __all__, and an import that starts and imports nothing."""

from __future__ import annotations

import subprocess
import sys

import tactor


def test_all_is_explicit_and_complete() -> None:
    assert sorted(tactor.__all__) == sorted(
        [
            "Actor",
            "ActorRef",
            "ActorSystem",
            "AsyncQueue",
            "BlockingProcesses",
            "BlockingQueue",
            "BlockingSystem",
            "BroadcastResult",
            "CallError",
            "CallTimeout",
            "Codec",
            "ConfigError",
            "DeadLetter",
            "DeadLettered",
            "DecodeError",
            "EncodeError",
            "EndpointInfo",
            "EventSubscription",
            "Histogram",
            "InvalidArguments",
            "JsonCodec",
            "MailboxFull",
            "MethodStats",
            "NoProvider",
            "NotRunning",
            "Outcome",
            "PayloadTooLarge",
            "Processes",
            "ProviderInfo",
            "RemoteError",
            "SchemaError",
            "SpawnError",
            "SystemStats",
            "TactorError",
            "Transport",
            "TransportClosed",
            "TransportError",
            "TypeCodec",
            "UnknownMethod",
            "UnreadableItem",
            "WouldBlock",
            "__version__",
            "deadline",
            "errors",
            "expose",
            "init",
            "json_schema",
            "open_transport",
            "processes",
            "publish",
            "queue",
            "remote",
            "shutdown",
            "stub",
            "subscribe",
            "subscriber",
            "system",
            "topic",
            "unexpose",
            "unsubscribe",
        ]
    )
    for name in tactor.__all__:
        assert hasattr(tactor, name), name


def test_every_error_shares_one_root() -> None:
    from tactor import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.TactorError), name
    assert issubclass(errors.CallTimeout, TimeoutError)


OPTIONAL = ("redis", "nats", "opentelemetry", "prometheus_client")


def test_import_starts_nothing_and_does_not_import_redis() -> None:
    code = (
        "import sys, threading, tactor\n"
        f"optional = {OPTIONAL!r}\n"
        "imported = [m for m in sys.modules if m.split('.')[0] in optional]\n"
        "assert not imported, imported\n"
        "assert 'tactor.cli' not in sys.modules, 'the CLI imported'\n"
        "assert 'argparse' not in sys.modules, 'argparse imported'\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "import asyncio\n"
        "assert asyncio.events._get_running_loop() is None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_system_made_with_tracing_off_imports_no_optional_dependency() -> None:
    """Without the extra nothing is imported; with it, ``tracing=False`` imports nothing."""
    code = (
        "import sys, tactor\n"
        "system = tactor.ActorSystem(tracing=False)\n"
        "import tactor.testing\n"
        f"optional = {OPTIONAL!r}\n"
        "imported = [m for m in sys.modules if m.split('.')[0] in optional]\n"
        "assert not imported, imported\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_py_typed_is_shipped() -> None:
    from importlib.resources import files

    assert files("tactor").joinpath("py.typed").is_file()
