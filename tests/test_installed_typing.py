"""tactor installed the way the README says is typed for its users' own mypy, outside the checkout.

``pip install -e .`` must leave a path entry (a ``.pth`` line) that type
checkers follow, not an import hook that only the interpreter runs: with
setuptools' default hook, a user's mypy said ``import-not-found``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

USER_CODE = """\
from dataclasses import dataclass
from decimal import Decimal
from typing import assert_type

from tactor import Actor, ActorSystem


@dataclass
class Item:
    sku: str
    qty: int


class Pricing(Actor, name="pricing"):
    async def quote(self, items: list[Item], coupon: str | None = None) -> Decimal:
        return sum((Decimal(i.qty) for i in items), Decimal(0))


async def main() -> None:
    async with ActorSystem() as system:
        pricing = system.proxy(Pricing, timeout=2.0)
        assert_type(pricing, Pricing)
        assert_type(await pricing.quote([Item("a", 2)]), Decimal)
"""
WRONG_CALL = '        await pricing.quote(["a"])\n'


def _run(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    # Nothing of this checkout's environment may help the user's project find tactor.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "MYPYPATH"}}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_users_mypy_sees_an_editable_install(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    assert _run([sys.executable, "-m", "venv", venv], tmp_path).returncode == 0
    install = _run([python, "-m", "pip", "install", "-q", "-e", ROOT], tmp_path)
    assert install.returncode == 0, install.stderr[-3000:]
    where = _run([python, "-c", "import tactor; print(tactor.__file__)"], tmp_path)
    assert where.stdout.strip() == str(ROOT / "tactor" / "__init__.py"), where.stderr

    project = tmp_path / "project"
    project.mkdir()
    (project / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    app = project / "app.py"
    app.write_text(USER_CODE)
    # The mypy of this run, looking at the fresh venv as a user's mypy looks at theirs.
    mypy = [sys.executable, "-m", "mypy", "--python-executable", python, "--cache-dir", tmp_path]
    checked = _run([*mypy, "app.py"], project)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    app.write_text(USER_CODE + WRONG_CALL)
    wrong = USER_CODE.count("\n") + 1
    checked = _run([*mypy, "app.py"], project)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and errors[0].startswith(f"app.py:{wrong}:"), checked.stdout
    assert errors[0].endswith("[list-item]"), checked.stdout
