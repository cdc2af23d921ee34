"""Hierarchical topics and patterns, shared by every transport.

Topics are dot-separated segments: ``prices.eu.changed``. A pattern matches
topics segment by segment: ``*`` matches exactly one segment and ``#``
matches zero or more segments (``prices.#`` matches ``prices`` and
``prices.eu.changed``; ``prices.*.changed`` matches ``prices.eu.changed``).
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..errors import ConfigError

__all__ = ["RESERVED", "check_pattern", "check_topic", "topic_matches"]

#: Topics under this prefix are tactor's own: only an exact subscription receives them.
RESERVED = "_tactor."
_SEGMENT = re.compile(r"^[A-Za-z0-9_\-:]+$")


def check_topic(topic: str) -> str:
    """Return ``topic`` if it is a valid concrete topic, else raise ``ConfigError``."""
    if not topic or not all(_SEGMENT.match(seg) for seg in topic.split(".")):
        raise ConfigError(
            f"invalid topic {topic!r}: use dot-separated segments of letters, digits, _ - :"
        )
    if topic.startswith(RESERVED):
        raise ConfigError(f"topic {topic!r}: topics under {RESERVED!r} are reserved for tactor")
    return topic


def check_pattern(pattern: str) -> str:
    """Return ``pattern`` if valid (segments, ``*`` or ``#``), else raise ``ConfigError``."""
    segments = pattern.split(".") if pattern else []
    if not segments or not all(s in ("*", "#") or _SEGMENT.match(s) for s in segments):
        raise ConfigError(
            f"invalid topic pattern {pattern!r}: use dot-separated segments, "
            "'*' for one segment, '#' for any number"
        )
    return pattern


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    for seg in pattern.split("."):
        if seg == "*":
            parts.append(r"[^.]+\.")
        elif seg == "#":
            parts.append(r"(?:[^.]+\.)*")
        else:
            parts.append(re.escape(seg) + r"\.")
    # Every segment is matched with its trailing dot; the topic gets one too.
    return re.compile("".join(parts) + r"\Z")


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches ``pattern`` (``*`` one segment, ``#`` any number).

    Wildcards never match a reserved topic (``_tactor.…``).
    """
    if pattern == topic:
        return True
    if topic.startswith(RESERVED):
        return False
    return _compile(pattern).match(topic + ".") is not None
