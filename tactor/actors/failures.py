"""Errors on the wire: how a provider reports a failure and how a caller re-raises it.

Every request gets exactly one reply; a failed one carries ``{"code", "type",
"message", ...}``. Codes:

- ``remote``: the method raised; re-raised as :class:`RemoteError` with the
  remote type name, message and traceback text;
- ``interface``: the method raised an exception type its class lists in
  ``errors=``; re-raised as that type, rebuilt from its fields or args;
- ``invalid_arguments``, ``unknown_method``, ``payload_too_large``,
  ``deadline``, ``encode``, ``malformed``, ``dead_letter``: tactor's own checks,
  re-raised as the matching :mod:`tactor.errors` type.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Mapping
from typing import Any

import attrs

from ..codecs import Codec
from ..errors import (
    CallTimeout,
    DeadLettered,
    DecodeError,
    EncodeError,
    InvalidArguments,
    PayloadTooLarge,
    RemoteError,
    TactorError,
    UnknownMethod,
)

__all__ = ["error_from_wire", "error_to_wire", "failure"]

_BY_CODE: dict[str, type[TactorError]] = {
    "unknown_method": UnknownMethod,
    "payload_too_large": PayloadTooLarge,
    "deadline": CallTimeout,
    "encode": EncodeError,
    "malformed": DecodeError,
    "dead_letter": DeadLettered,
}
_JSON_SCALARS = (str, int, float, bool, type(None))


def failure(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """A wire error for one of tactor's own checks."""
    return {"code": code, "type": code, "message": message, **extra}


def _is_structured(cls: type) -> bool:
    return dataclasses.is_dataclass(cls) or attrs.has(cls)


def error_to_wire(
    exc: BaseException, interface: Mapping[str, type[BaseException]], codec: Codec
) -> dict[str, Any]:
    """The wire form of an exception raised by an actor method."""
    cls = type(exc)
    name = cls.__qualname__
    if interface.get(name) is cls:
        try:
            if _is_structured(cls):
                data: Any = codec.to_wire(exc, cls)
            elif all(isinstance(a, _JSON_SCALARS) for a in exc.args):
                data = list(exc.args)
            else:
                data = [str(exc)]
            return {"code": "interface", "type": name, "message": str(exc), "data": data}
        except EncodeError:
            pass  # falls through to a RemoteError that still says what happened
    return {
        "code": "remote",
        "type": f"{cls.__module__}.{name}",
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


def error_from_wire(
    err: Mapping[str, Any],
    interface: Mapping[str, type[BaseException]],
    codec: Codec,
    *,
    endpoint: str,
    method: str,
    provider: str,
) -> BaseException:
    """The exception a caller raises for a failed reply."""
    code = str(err.get("code", "remote"))
    message = str(err.get("message", ""))
    where = f"{endpoint}.{method} (provider {provider})"
    if code == "interface":
        cls = interface.get(str(err.get("type")))
        if cls is not None:
            try:
                data = err.get("data")
                if _is_structured(cls):
                    rebuilt: BaseException = codec.from_wire(data, cls)
                    return rebuilt
                return cls(*(data if isinstance(data, list) else [message]))
            except (DecodeError, TypeError, ValueError):
                pass
    if code == "invalid_arguments":
        errors = err.get("errors")
        return InvalidArguments(
            f"{where} rejected the arguments",
            [str(e) for e in errors] if isinstance(errors, list) else [message],
        )
    known = _BY_CODE.get(code)
    if known is not None:
        return known(f"{message} [{where}]")
    return RemoteError(
        str(err.get("type", "Exception")),
        message,
        str(err.get("traceback", "")),
        endpoint=endpoint,
        method=method,
        provider=provider,
    )
