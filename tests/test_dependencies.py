"""The runtime dependency ranges are true: the runs of ``./dev test`` test their ends.

``constraints/lowest.txt`` pins each lower bound of ``pyproject.toml`` exactly,
and each run has installed what it says it tests (``./dev test`` names the run
in ``TACTOR_DEPS``).
"""

from __future__ import annotations

import os
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parent.parent


def pins(name: str) -> dict[str, Version]:
    """The ``name==version`` lines of constraints/NAME, by normalized name."""
    found = {}
    for line in (ROOT / "constraints" / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            package, version = line.split("==")
            found[canonicalize_name(package)] = Version(version)
    return found


def runtime_requirements() -> list[Requirement]:
    """tactor's runtime dependencies, its extras (redis, nats, otel, prometheus) included."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    listed = (
        project["dependencies"]
        + extras["redis"]
        + extras["nats"]
        + extras["otel"]
        + extras["prometheus"]
    )
    return [Requirement(line) for line in listed]


def test_each_runtime_dependency_is_a_range_whose_lower_bound_the_lowest_run_pins() -> None:
    lowest = pins("lowest.txt")
    for req in runtime_requirements():
        bounds = [Version(s.version) for s in req.specifier if s.operator == ">="]
        assert len(bounds) == 1, f"{req}: a range with one lower bound (>=)"
        assert lowest.get(canonicalize_name(req.name)) == bounds[0], (
            f"{req}: constraints/lowest.txt must pin {req.name}=={bounds[0]}"
        )


def test_this_run_has_installed_what_it_tests() -> None:
    deps = os.environ.get("TACTOR_DEPS")
    if deps is None:
        pytest.skip("not run by ./dev test (TACTOR_DEPS names the run)")
    expected = pins("lowest.txt" if deps == "lowest" else "runtime.txt")
    installed = {name: Version(metadata.version(name)) for name in pins("lowest.txt")}
    if deps == "latest":  # nothing older than the pins
        assert all(installed[name] >= expected[name] for name in installed), installed
    else:
        assert installed == {name: expected[name] for name in installed}
