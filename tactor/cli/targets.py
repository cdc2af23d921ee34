"""What the command line names: ``module:attr`` targets, and constructor arguments as JSON.

A target is an :class:`~tactor.Actor` subclass (served as providers, its
constructor's arguments decoded from JSON by its type hints) or a factory: a
function, plain or ``async``, that takes nothing or the ``--url`` and returns an
:class:`~tactor.ActorSystem` it set up (spawned its providers, subscribed its
handlers). Imports go through the importer as a user's program would; the
current directory is on the path, as for ``python -m``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tactor

from .errors import UsageError

__all__ = ["Target", "constructor_args", "load", "parse_json"]


@dataclass(frozen=True, slots=True)
class Target:
    """A loaded ``module:attr``: an actor class, or a factory of a system."""

    spec: str
    actor: type[tactor.Actor] | None = None
    factory: Callable[..., Any] | None = None


def load(spec: str, *, factories: bool = True) -> Target:
    """Import ``module:attr`` (``attr`` may be dotted); raise :class:`UsageError` if it is
    not an actor class (nor, with ``factories``, a function)."""
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr:
        raise UsageError(f"{spec!r}: expected module:Class (e.g. shop.pricing:Pricing)")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # the current directory, as python -m does
    try:
        value: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from None
    except Exception as exc:  # the module itself raised: say what, in one line
        raise UsageError(f"importing {module_name!r} raised {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(value, part):
            raise UsageError(f"{module_name!r} has no attribute {attr!r}")
        value = getattr(value, part)
    if isinstance(value, type) and issubclass(value, tactor.Actor):
        return Target(spec, actor=value)
    if factories and callable(value) and not isinstance(value, type):
        return Target(spec, factory=value)
    wanted = (
        "an Actor subclass or a function returning an ActorSystem"
        if factories
        else ("an Actor subclass")
    )
    raise UsageError(f"{spec} is {type(value).__name__} {value!r}, not {wanted}")


def parse_json(text: str, what: str) -> Any:
    """``text`` as JSON; :class:`UsageError` naming ``what`` if it is not."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not valid JSON ({exc}): {text!r}") from None


def constructor_args(cls: type[tactor.Actor], data: Any) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments for ``cls(...)`` from JSON data (a list or an object),
    each decoded by the constructor's type hint; :class:`UsageError` for what does not fit."""
    if data is None:
        data = []
    if not isinstance(data, list | dict):
        raise UsageError(f"{cls.__qualname__}'s arguments: expected a JSON list or object")
    signature = inspect.signature(cls)
    try:
        bound = signature.bind(*data) if isinstance(data, list) else signature.bind(**data)
    except TypeError as exc:
        raise UsageError(f"{cls.__qualname__}{signature}: {exc}") from None
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable hints: the values go as JSON gave them
        hints = {}
    codec = tactor.JsonCodec()
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if name not in hints or kind in (kind.VAR_POSITIONAL, kind.VAR_KEYWORD):
            continue
        try:
            bound.arguments[name] = codec.from_wire(value, hints[name])
        except tactor.DecodeError as exc:
            raise UsageError(f"{cls.__qualname__}({name}): {exc}") from None
    return list(bound.args), dict(bound.kwargs)
