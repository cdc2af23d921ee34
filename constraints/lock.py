"""Write the pins of ``./dev lock``: run by the Python of a fresh venv holding the newest versions.

``./dev lock`` installs ``tactor[redis,dev,bench,ray]`` with the newest versions into a
throwaway venv, then this script splits what got installed into two files:

- ``runtime.txt``: tactor's runtime dependencies (the ``redis`` extra included)
  and everything they pull in — the versions the pinned run tests;
- ``tools.txt``: everything else — the tools that judge the code (pytest,
  pytest-timeout, hypothesis, mypy, ruff), the benchmark peers, their own
  dependencies, and pip. Every run of ``./dev test`` installs these.

Both are constraints files (``pip install -c``): they fix versions, they
install nothing by themselves.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HERE = Path(__file__).parent
HEADER = """\
# {what}
# Written by `./dev lock` on Python {python}; do not edit by hand. See constraints/README.md.
"""
LEFT_OUT = {"tactor", "setuptools", "wheel"}  # the project itself; what venv brings along


def requirements(dist: metadata.Distribution, extras: set[str]) -> list[Requirement]:
    """The requirements of ``dist`` that apply here with ``extras`` asked for."""
    wanted = []
    for line in dist.requires or []:
        req = Requirement(line)
        environments = [{"extra": extra} for extra in extras | {""}]
        if req.marker is None or any(req.marker.evaluate(env) for env in environments):
            wanted.append(req)
    return wanted


#: Pinned with the runtime dependencies though only the tests use it: its version must be
#: the OpenTelemetry API's (the lowest run pins both at the API's lower bound).
IN_STEP = [Requirement("opentelemetry-sdk")]


def runtime_closure(installed: dict[str, metadata.Distribution]) -> set[str]:
    """tactor's runtime dependencies (with its extras), and theirs, by name."""
    seen: set[str] = set()
    todo = requirements(installed["tactor"], {"redis", "otel", "prometheus"}) + IN_STEP
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or name not in installed:
            continue
        seen.add(name)
        todo.extend(requirements(installed[name], set(req.extras)))
    return seen


def write(path: Path, what: str, pins: list[str]) -> None:
    python = ".".join(map(str, sys.version_info[:3]))
    path.write_text(HEADER.format(what=what, python=python) + "".join(f"{p}\n" for p in pins))


def main() -> None:
    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions()}
    runtime = runtime_closure(installed)
    pins = {name: f"{name}=={dist.version}" for name, dist in sorted(installed.items())}
    write(
        HERE / "runtime.txt",
        "tactor's runtime dependencies, as the pinned run of ./dev test installs them.",
        [pin for name, pin in pins.items() if name in runtime],
    )
    write(
        HERE / "tools.txt",
        "The tools that judge the code, the benchmark peers, and their dependencies.",
        [pin for name, pin in pins.items() if name not in runtime | LEFT_OUT],
    )


if __name__ == "__main__":
    main()
