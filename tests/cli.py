"""Running the ``tactor`` command as a subprocess, as a user's shell would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

__all__ = ["APP", "Ran", "command", "tactor"]

APP = "tests.cli_app"


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tactor", *args]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TACTOR_URL"}
    return {**env, **extra}


class Ran:
    """A finished ``tactor`` command: its exit status and output."""

    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        self.status = done.returncode
        self.out = done.stdout
        self.err = done.stderr

    def json(self) -> Any:
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"<Ran status={self.status} out={self.out!r} err={self.err!r}>"


def tactor(*args: str, env: dict[str, str] | None = None) -> Ran:
    """Run ``tactor ARGS`` to its end (it must end within 30 s)."""
    done = subprocess.run(
        command(*args),
        capture_output=True,
        text=True,
        timeout=30,
        env=env or environment(),
        stdin=subprocess.DEVNULL,
    )
    return Ran(done)
