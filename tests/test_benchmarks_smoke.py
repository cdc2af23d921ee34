"""A smoke run of every benchmark row with few iterations, so the benchmarks cannot rot.

It asserts that each row ran and produced figures and ratios — never a speed:
timing targets are for ``./dev bench`` to report, not for the suite to enforce.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_nats, require_redis

ROOT = Path(__file__).parent.parent
RUN_TIMEOUT = 240  # seconds: a quick run takes about a minute on a quiet machine


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(RUN_TIMEOUT + 30)
def test_every_benchmark_row_runs(tmp_path: Path) -> None:
    env = {**os.environ, "TACTOR_REDIS_URL": require_redis(), "PYTHONPATH": str(ROOT)}
    env["TACTOR_NATS_URL"] = require_nats()
    # Its own process group: whatever happens to this test, every process the run started
    # (the benchmarks' servers and workers included) is ended with it, by the group's id.
    run = subprocess.Popen(
        [sys.executable, "-m", "benchmarks", "--quick"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = run.communicate(timeout=RUN_TIMEOUT)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    assert run.returncode == 0, stderr[-3000:]
    results = json.loads((ROOT / "benchmarks" / "results" / "smoke.json").read_text())
    rows = results["rows"]
    from benchmarks.__main__ import ROWS

    assert len(rows) >= len(ROWS)
    for row in rows:
        assert row["figures"], row["name"]
        for figure in row["figures"]:
            assert figure["medians"] and all(m > 0 for m in figure["medians"]), figure
        assert set(row["ratios"]) == {f["name"] for f in row["figures"][1:]}
    assert "| row |" in stdout
