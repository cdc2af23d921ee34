"""One ``tactor`` logger tree (a logger per module: ``tactor.actors.calls``,
``tactor.transports.redis.consumer``, ...), no print, and log lines about a message that
name its endpoint, method and message id."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from tactor import Actor, ActorSystem

PACKAGE = Path(__file__).parent.parent / "tactor"


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def library_modules() -> list[Path]:
    """Every module but the command line's, whose output is what it prints."""
    return [path for path in modules() if "cli" not in path.relative_to(PACKAGE).parts[:1]]


def test_tactor_never_prints() -> None:
    printing = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for path in library_modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]
    assert printing == []


def test_every_logger_is_its_modules_in_the_tactor_tree() -> None:
    names = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "getLogger":
                names.append((path.relative_to(PACKAGE.parent), ast.unparse(node.args[0])))
    module_loggers = [name for _, name in names if name == "__name__"]
    assert len(module_loggers) >= 10
    # Besides modules' own: the test kit listens at the root of the tree.
    assert {name for _, name in names} == {"__name__", "'tactor'"}, names


class Fragile(Actor, name="fragile-logging"):
    async def fail(self, why: str) -> None:
        raise RuntimeError(why)

    async def take(self, count: int) -> int:
        return count


async def test_a_failing_tell_is_logged_with_endpoint_method_and_message_id(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tactor")
    async with ActorSystem(url, timeout=5) as system:
        await system.spawn(Fragile)
        await system.tell(Fragile.fail, "broken")
        await system.call(Fragile.take, 1)  # after the tell: it was handled
        with pytest.raises(Exception, match="take"):
            await system.call(Fragile.take, "x")  # type: ignore[arg-type]
    (tell,) = [r for r in caplog.records if "raised while handling a tell" in r.getMessage()]
    assert tell.name == "tactor.actors.requests"
    assert f"fragile-logging.fail (message {system.node}." in tell.getMessage()
    (bad,) = [r for r in caplog.records if "fragile-logging.take" in r.getMessage()]
    assert f"(message {system.node}." in bad.getMessage()
