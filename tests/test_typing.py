"""Type tests: mypy --strict accepts correct use of the typed API and rejects misuse."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

HERE = Path(__file__).parent / "typing"


def _mypy(path: Path) -> list[str]:
    stdout, stderr, _ = mypy_api.run(
        [
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            "--hide-error-context",
            "--cache-dir",  # one per venv: ./dev test's runs differ in redis-py's hints
            str(Path(sys.prefix) / ".mypy_cache"),
            str(path),
        ]
    )
    assert not stderr, stderr
    return [line for line in stdout.splitlines() if ": error:" in line or ": note:" in line]


def test_mypy_accepts_correct_calls() -> None:
    errors = [line for line in _mypy(HERE / "accept.py") if ": error:" in line]
    assert errors == []


def test_mypy_rejects_misuse() -> None:
    path = HERE / "reject.py"
    expected: dict[int, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        marker = re.search(r"# E: ([\w-]+)$", line)
        if marker:
            expected[number] = marker.group(1)
    found: dict[int, set[str]] = {}
    for line in _mypy(path):
        match = re.match(r".*?:(\d+): error: .*\[([\w-]+)\]$", line)
        if match:
            found.setdefault(int(match.group(1)), set()).add(match.group(2))
    unexpected = sorted(set(found) - set(expected))
    missing = sorted(n for n in expected if n not in found)
    wrong = sorted(n for n, code in expected.items() if n in found and code not in found[n])
    assert (unexpected, missing, wrong) == ([], [], []), found
