"""The documentation's code runs: every ```python block in README.md and docs/*.md, and examples/.

Each block runs as a program of its own, in a fresh process whose working
directory is a temporary one holding ``quickstart.py`` (the README's quick
start, which other blocks import). A block that prints ends with a
``# Output:`` comment and the lines it prints, as comments; its output must be
exactly those lines, and a block without that section must print nothing.
Blocks that use the documented Redis URL run against the test Redis under a
key prefix of their own. A ```python block that cannot be a program says why
in ``<!-- not-run: reason -->`` on the line before its fence; it is skipped
with that reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import drop_keys, require_redis, with_query

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
QUICKSTART = EXAMPLES / "quickstart.py"
DOC_REDIS_URL = "redis://localhost:6379/0"
PYTHON_FENCES = {"python", "py", "python3"}
NOT_RUN = re.compile(r"<!--\s*not-run:(.*?)-->")
ANY_REDIS_URL = re.compile(r"rediss?://[\w\[]")
OUTPUT_HEADER = "# Output:"
TIMEOUT = 30.0


def doc_files() -> list[Path]:
    """README.md and every page under docs/: a new page is covered without a change here."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    not_run: str | None  # the reason given in a not-run marker, if any

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def is_python(self) -> bool:
        return self.lang in PYTHON_FENCES

    @property
    def uses_redis(self) -> bool:
        return DOC_REDIS_URL in self.code


def blocks_of(path: Path) -> list[Block]:
    """The fenced blocks of ``path``; a fence the extractor cannot read is an error."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.lstrip().startswith("```"):
            index += 1
            continue
        where = f"{path.relative_to(ROOT)}:{index + 1}"
        if line != line.lstrip():
            raise AssertionError(f"{where}: an indented fence; the docs' code blocks start a line")
        fences = (j for j in range(index + 1, len(lines)) if lines[j].startswith("```"))
        closing = next(fences, None)
        if closing is None or lines[closing].strip() != "```":
            raise AssertionError(f"{where}: the block opened here is not closed by a bare ```")
        before = next((lines[j] for j in range(index - 1, -1, -1) if lines[j].strip()), "")
        marker = NOT_RUN.fullmatch(before.strip())
        code = "\n".join(lines[index + 1 : closing]) + "\n"
        reason = marker.group(1).strip() if marker else None
        blocks.append(Block(path, index + 1, line[3:].strip(), code, reason))
        index = closing + 1
    return blocks


BLOCKS = [block for path in doc_files() for block in blocks_of(path)]
PYTHON_BLOCKS = [block for block in BLOCKS if block.is_python]


def expected_output(code: str) -> str:
    """What a block prints: the comment lines under its ``# Output:``, else nothing."""
    lines = code.splitlines()
    if OUTPUT_HEADER not in lines:
        return ""
    shown = lines[lines.index(OUTPUT_HEADER) + 1 :]
    assert all(line == "#" or line.startswith("# ") for line in shown), (
        f"only comment lines may follow {OUTPUT_HEADER!r}: {shown}"
    )
    return "".join(line[2:] + "\n" for line in shown)


def run_python(program: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``program`` in a fresh interpreter, in its own directory, with a timeout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(program), *args],
        cwd=program.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def assert_ran(result: subprocess.CompletedProcess[str], expected: str, what: str) -> None:
    said = f"{what}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
    assert result.returncode == 0, f"exit code {result.returncode}: {said}"
    assert result.stdout == expected, f"output differs from {expected!r}: {said}"
    assert result.stderr == "", f"wrote to stderr: {said}"


def redis_prefix() -> str:
    return f"tactor-test:doc{uuid.uuid4().hex[:12]}"


# -- the documentation -----------------------------------------------------------


def test_the_docs_have_python_blocks_and_markers_sit_on_them() -> None:
    """Every doc page is read, and every not-run marker is on a python block and says why."""
    assert {b.path.name for b in PYTHON_BLOCKS} >= {"README.md", "concepts.md", "sync.md"}
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        marked = [b for b in blocks_of(path) if b.not_run is not None]
        assert len(NOT_RUN.findall(text)) == len(marked), (
            f"{path.name}: a not-run marker is not on the line before a fence"
        )
        for block in marked:
            assert block.is_python, f"{block.name}: a not-run marker on a {block.lang!r} block"
            assert block.not_run, f"{block.name}: a not-run marker must say why"


def block_param(block: Block) -> object:
    marks = [pytest.mark.redis] if block.uses_redis else []
    return pytest.param(block, id=block.name, marks=marks)


@pytest.mark.slow
@pytest.mark.parametrize("block", [block_param(b) for b in PYTHON_BLOCKS])
def test_python_block_runs_as_pasted(block: Block, tmp_path: Path) -> None:
    if block.not_run is not None:
        pytest.skip(f"not run ({block.name}): {block.not_run}")
    others = ANY_REDIS_URL.findall(block.code.replace(DOC_REDIS_URL, ""))
    assert not others, f"{block.name}: use {DOC_REDIS_URL} (the tests point it at their Redis)"
    shutil.copy(QUICKSTART, tmp_path / "quickstart.py")
    program = tmp_path / "block.py"
    expected = expected_output(block.code)
    if not block.uses_redis:
        program.write_text(block.code, encoding="utf-8")
        assert_ran(run_python(program), expected, block.name)
        return
    base, prefix = require_redis(), redis_prefix()
    code = block.code.replace(DOC_REDIS_URL, with_query(base, prefix=prefix))
    program.write_text(code, encoding="utf-8")
    try:
        assert_ran(run_python(program), expected, block.name)
    finally:
        drop_keys(base, prefix)


def quick_start() -> Block:
    readme = ROOT / "README.md"
    heading = readme.read_text(encoding="utf-8").splitlines().index("## Quick start") + 1
    return next(b for b in PYTHON_BLOCKS if b.path == readme and b.line > heading)


def test_the_demo_is_the_readme_quick_start() -> None:
    assert QUICKSTART.read_text(encoding="utf-8") == quick_start().code, (
        "examples/quickstart.py (./dev demo) must be the README's quick start, byte for byte"
    )
    assert expected_output(quick_start().code), "the quick start shows what it prints"


# -- the examples ----------------------------------------------------------------

RUN_HERE = {"quickstart.py", "sync_module_api.py", "redis_processes.py", "process_pool.py"}


def test_every_example_is_run_here() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == RUN_HERE


@pytest.mark.slow
def test_quickstart_example_prints_what_the_readme_says() -> None:
    """What ``./dev demo`` runs, run from where it lives."""
    assert_ran(run_python(QUICKSTART), expected_output(quick_start().code), "quickstart.py")


@pytest.mark.slow
def test_sync_module_api_example(url: str) -> None:
    lines = ["by name: 42", "typed by callable: 12", "every provider: [10]", "event: hello"]
    expected = "".join(f"{line}\n" for line in [*lines, "queue: [0, 1, 2]"])
    assert_ran(run_python(EXAMPLES / "sync_module_api.py", url), expected, "sync_module_api.py")


@pytest.mark.redis
@pytest.mark.slow
def test_redis_processes_example() -> None:
    base, prefix = require_redis(), redis_prefix()
    try:
        result = run_python(EXAMPLES / "redis_processes.py", with_query(base, prefix=prefix))
    finally:
        drop_keys(base, prefix)
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and result.stderr == "", result.stdout + result.stderr
    assert len(lines) == 4
    assert re.fullmatch(r"providers: \['pricing@\w+', 'pricing@\w+'\]", lines[0])
    assert lines[1:] == [
        "broadcast: [Decimal('2.50'), Decimal('2.50')] complete: True",
        "one call: 5.00",
        "after the event: [Decimal('2.00'), Decimal('2.00')]",
    ]


@pytest.mark.slow
def test_process_pool_example() -> None:
    result = run_python(EXAMPLES / "process_pool.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "primes below 200,000: 17984",
        "providers: 2 in processes of their own: True",
        "restarted: True",
    ]
    assert "exited (signal SIGKILL); restarting in 0.1s" in result.stderr
