"""Transport URL options: each one parsed, checked, and named in its error.

``memory://NAME?mailbox_size=8`` and ``redis://host/0?prefix=app&ttl=5``: a
transport lists its options as :class:`Option` values; :func:`split_options`
parses them off a URL and raises :class:`~tactor.errors.ConfigError` naming the
option, the value and what it accepts — or, for an unknown name, the options
there are (and the closest one, for a typo).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..errors import ConfigError

__all__ = [
    "COUNT",
    "PREFIX",
    "SECONDS",
    "SECONDS_OR_ZERO",
    "SYSTEM_OPTIONS",
    "TEXT",
    "Option",
    "one_of",
    "check",
    "read",
    "split_options",
    "unknown",
]

_PREFIX = re.compile(r"^[A-Za-z0-9_.:\-]+$")


@dataclass(frozen=True, slots=True)
class Option:
    """How to read one URL option: ``parse`` raises ValueError for a bad value."""

    parse: Callable[[str], Any]
    accepts: str  # for messages: "a whole number >= 1"


def _count(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


def _seconds(raw: str, *, zero: bool = False) -> float:
    value = float(raw)
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise ValueError(raw)
    return value


def _text(raw: str) -> str:
    if not raw:
        raise ValueError(raw)
    return raw


def _prefix(raw: str) -> str:
    if not _PREFIX.match(raw):
        raise ValueError(raw)
    return raw


def one_of(*choices: str) -> Option:
    """An option that takes one of ``choices``."""

    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(raw)
        return raw

    return Option(parse, " or ".join(repr(choice) for choice in choices))


COUNT = Option(_count, "a whole number >= 1")
SECONDS = Option(_seconds, "a number of seconds > 0")
SECONDS_OR_ZERO = Option(lambda raw: _seconds(raw, zero=True), "a number of seconds >= 0")
PREFIX = Option(_prefix, "letters, digits and _ . : - (it begins every key)")
TEXT = Option(_text, "a non-empty text")

#: Options every transport's URL takes for the system above it (``ActorSystem``'s own
#: arguments win): how often a message may be attempted, how many dead letters to keep.
SYSTEM_OPTIONS = {"max_deliveries": COUNT, "max_dead_letters": COUNT}


def read(scheme: str, name: str, raw: str, option: Option) -> Any:
    """Option ``name``'s value parsed from ``raw``; ConfigError naming both if it is bad."""
    try:
        return option.parse(raw)
    except ValueError:
        raise ConfigError(f"{scheme}:// option {name}={raw!r}: expected {option.accepts}") from None


def check(scheme: str, name: str, value: object, option: Option) -> None:
    """Raise ConfigError unless ``option`` accepts ``value`` (given in code, not in a URL)."""
    read(scheme, name, str(value), option)


def unknown(scheme: str, name: str, known: Iterable[str], *, also: str = "") -> ConfigError:
    """The error for an option nobody takes: the closest known name, and the known ones."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(
        f"unknown {scheme}:// option {name!r}{hint}; tactor's options are {', '.join(names)}{also}"
    )


def split_options(
    url: str, options: Mapping[str, Option], *, others: bool = False
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Parse ``options`` off ``url``'s query; return them and the rest.

    Without ``others`` every query parameter must be one of ``options``.
    Raises :class:`ConfigError` naming the option and the value.
    """
    scheme = urlsplit(url).scheme
    ours: dict[str, Any] = {}
    rest: list[tuple[str, str]] = []
    for name, raw in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        option = options.get(name)
        if option is None:
            if not others:
                raise unknown(scheme, name, options)
            rest.append((name, raw))
            continue
        ours[name] = read(scheme, name, raw, option)
    return ours, rest
