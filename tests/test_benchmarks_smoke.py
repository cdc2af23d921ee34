"""A smoke run of every benchmark row with few iterations, so the benchmarks cannot rot.

It asserts that each row ran and produced figures and ratios — never a speed:
timing targets are for ``./dev bench`` to report, not for the suite to enforce.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_nats, require_redis

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
@pytest.mark.redis
def test_every_benchmark_row_runs(tmp_path: Path) -> None:
    env = {**os.environ, "TACTOR_REDIS_URL": require_redis(), "PYTHONPATH": str(ROOT)}
    env["TACTOR_NATS_URL"] = require_nats()
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((ROOT / "benchmarks" / "results" / "smoke.json").read_text())
    rows = results["rows"]
    from benchmarks.__main__ import ROWS

    assert len(rows) >= len(ROWS)
    for row in rows:
        assert row["figures"], row["name"]
        for figure in row["figures"]:
            assert figure["medians"] and all(m > 0 for m in figure["medians"]), figure
        assert set(row["ratios"]) == {f["name"] for f in row["figures"][1:]}
    assert "| row |" in run.stdout
