"""How ``tactor`` shows the registry, broadcast outcomes and dead letters: lines for people,
JSON data for ``--json``."""

from __future__ import annotations

import json
from typing import Any

import tactor

from .main import error_json

__all__ = ["describe_endpoint", "endpoint_json", "letter_json", "letter_line", "outcome_json"]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "age unknown"
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"up {seconds:.1f}s"
    if seconds < 7200:
        return f"up {seconds / 60:.0f}m"
    return f"up {seconds / 3600:.1f}h"


def describe_endpoint(endpoint: tactor.EndpointInfo) -> str:
    """An endpoint's line, then one indented line per provider."""
    count = len(endpoint.providers)
    depth = "" if endpoint.depth is None else f", mailbox depth {endpoint.depth}"
    lines = [f"{endpoint.name}  ({count} provider{'' if count == 1 else 's'}{depth})"]
    for p in endpoint.providers:
        where = f"{p.host or '?'}:{p.pid if p.pid is not None else '?'}"
        line = f"  {p.id}  node {p.node or '?'}  {where}  {_age(p.age)}"
        lines.append(line if p.actor is None else f"{line}  {p.actor}")
    return "\n".join(lines)


def endpoint_json(endpoint: tactor.EndpointInfo) -> dict[str, Any]:
    providers = [
        {
            "id": p.id,
            "node": p.node,
            "host": p.host,
            "pid": p.pid,
            "since": None if p.since is None else p.since.isoformat(),
            "age": p.age,
            "actor": p.actor,
        }
        for p in endpoint.providers
    ]
    return {"endpoint": endpoint.name, "depth": endpoint.depth, "providers": providers}


def outcome_json(outcome: tactor.Outcome[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {"provider": outcome.provider, "answered": outcome.answered}
    if outcome.ok:
        found["value"] = outcome.value
    elif outcome.error is not None:
        found["error"] = error_json(outcome.error)
    return found


def letter_json(letter: tactor.DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "endpoint": letter.endpoint,
        "reason": letter.reason,
        "detail": letter.detail,
        "attempts": letter.attempts,
        "at": letter.at.isoformat(),
        "message_id": letter.message_id,
        "kind": letter.kind,
        "method": letter.method,
        "args": letter.args,
    }


def letter_line(letter: tactor.DeadLetter) -> str:
    call = f"{letter.kind or '?'} {letter.method or '?'} {json.dumps(letter.args, default=str)}"
    at = letter.at.strftime("%Y-%m-%d %H:%M:%S")
    n = letter.attempts
    why = f"{letter.reason} ({n} attempt{'' if n == 1 else 's'}): {letter.detail}"
    return f"{letter.id}  {at}  {call}  {why}"
