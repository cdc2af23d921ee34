"""Leaf types and their JSON forms: the hooks :class:`~tactor.codecs.json.JsonCodec` plugs in.

``LEAVES_IN``/``LEAVES_OUT`` are the wire rules. ``NATIVE_OUT`` is for
encoding straight to bytes: it leaves a value to orjson only where orjson
writes exactly the bytes the wire rules would, and follows the wire rules
everywhere else. ``INLINE`` holds the inline forms of hooks for generated
code.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from math import isfinite
from typing import Any
from uuid import UUID

from tactor.codecs.jsonschema import NoneType
from tactor.codecs.wire import Exact, In, Inline, Out, WireError, mismatch, show

__all__ = ["INLINE", "LEAVES_IN", "LEAVES_OUT", "NATIVE_OUT"]


#: The inline forms of some hooks below, for generated code (see ``wire.Inline``).
INLINE: dict[Callable[..., Any], Inline] = {}
#: For a float, ``v - v == 0.0`` says ``isfinite(v)`` (inf - inf and nan - nan are nan).
_FINITE_FLOAT = "{v}.__class__ is float and {v} - {v} == 0.0"


def _float_in(value: Any, _: Any) -> float:
    if value.__class__ is float and isfinite(value):
        return float(value)
    if value.__class__ is int:
        return float(value)
    raise mismatch("finite float" if value.__class__ is float else "float", value)


def _from_string(label: str, parse: Callable[[str], Any]) -> In:
    def structure_from_string(value: Any, _: Any) -> Any:
        if value.__class__ is not str:
            raise mismatch(label, value)
        try:
            return parse(value)
        except (ValueError, ArithmeticError):
            raise WireError(f"invalid {label} {show(value)}") from None

    INLINE[structure_from_string] = Inline("{v}.__class__ is str", "{parse}({v})", {"parse": parse})
    return structure_from_string


def _decimal_in(value: Any, _: Any) -> Decimal:
    if value.__class__ is int:
        return Decimal(value)
    if value.__class__ is not str:
        raise mismatch("Decimal", value)
    try:
        number = Decimal(value)
    except (ValueError, ArithmeticError):
        pass
    else:
        # Decimal() alone also takes "NaN", "Infinity", " 1 ", "1_000" and non-ASCII
        # digits; what is left matches DECIMAL_PATTERN (cheaper than the regex).
        if number.is_finite() and value.isascii() and "_" not in value and value == value.strip():
            return number
    raise WireError(f"invalid Decimal {show(value)}")


INLINE[_float_in] = Inline(_FINITE_FLOAT, "{v}", {})
# A string of these characters only that Decimal() reads is ASCII, has no
# whitespace or underscores, and is not NaN or Infinity: _decimal_in returns
# Decimal(it), and rejects every other string.
INLINE[_decimal_in] = Inline(
    "{v}.__class__ is str and not {v}.strip('0123456789+-.eE')",
    "{Decimal}({v})",
    {"Decimal": Decimal},
)


def _timedelta_in(value: Any, _: Any) -> timedelta:
    if value.__class__ is not int and value.__class__ is not float:
        raise mismatch("timedelta (seconds)", value)
    try:
        return timedelta(seconds=value)
    except (OverflowError, ValueError):
        raise WireError(f"invalid timedelta {show(value)}") from None


def _float_out(value: float) -> float:
    if isfinite(value):
        return value
    raise ValueError(f"non-finite float {value!r} has no JSON form")


def _decimal_out(value: Decimal) -> str:
    if value.is_finite():
        return str(value)
    raise ValueError(f"non-finite Decimal {value!r} is not sent")


INLINE[_float_out] = Inline(_FINITE_FLOAT, "{v}", {})
INLINE[_decimal_out] = Inline(
    "{v}.__class__ is {Decimal} and {v}.is_finite()", "str({v})", {"Decimal": Decimal}
)

#: Durations shorter than this many seconds survive float seconds to the microsecond.
_TIMEDELTA_LIMIT = 2.0**33


def _timedelta_out(value: timedelta) -> float:
    seconds = value.total_seconds()
    if -_TIMEDELTA_LIMIT < seconds < _TIMEDELTA_LIMIT:
        return seconds
    raise ValueError(f"timedelta {value} is too long to send exactly (limit 2**33 s)")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _b64encode(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


#: The structure hooks of leaf types; Exact(cls) is a hook accepting exactly that class.
LEAVES_IN: dict[Any, In | Exact] = {
    **dict.fromkeys((None, NoneType), Exact(NoneType)),
    **{bool: Exact(bool), int: Exact(int), str: Exact(str)},
    **{float: _float_in, Decimal: _decimal_in, timedelta: _timedelta_in},
    bytes: _from_string("bytes (base64)", _b64decode),
    datetime: _from_string("datetime", datetime.fromisoformat),
    date: _from_string("date", date.fromisoformat),
    time: _from_string("time", time.fromisoformat),
    UUID: _from_string("UUID", UUID),
}
#: The unstructure hooks of leaf types; the others (str, int, bool, None) pass through.
LEAVES_OUT: dict[Any, Out] = {
    **{float: _float_out, Decimal: _decimal_out, timedelta: _timedelta_out, bytes: _b64encode},
    **{datetime: datetime.isoformat, date: date.isoformat, time: time.isoformat, UUID: str},
}


# --- for orjson: the same bytes, fewer Python calls --------------------------------
#
# orjson (3.13) writes a date and a UUID as isoformat()/str() do, and a datetime
# too unless its offset has seconds (orjson rounds those to minutes) or its
# tzinfo is not a fixed offset (not checked). Not a time: it writes
# time(0, 0, 0, 10000) as "00:00:00.10000". Subclasses may format themselves.
# tests/test_codec_native.py holds orjson to these.


def _datetime_native(value: datetime) -> Any:
    if value.__class__ is datetime:
        zone = value.tzinfo
        if zone is None or zone is UTC:
            return value
        if zone.__class__ is timezone:
            offset = zone.utcoffset(None)
            if offset is not None and not offset.microseconds and not offset.seconds % 60:
                return value
    return datetime.isoformat(value)


def _date_native(value: date) -> Any:
    return value if value.__class__ is date else date.isoformat(value)


def _uuid_native(value: UUID) -> Any:
    return value if value.__class__ is UUID else str(value)


def _same_class(cls: type, test: str = "", **names: Any) -> Inline:
    """Values of exactly ``cls`` (that pass ``test``) go out as they are."""
    return Inline(f"{{v}}.__class__ is {{cls}}{test}", "{v}", {"cls": cls, **names})


_NAIVE_OR_UTC = " and ({v}.tzinfo is None or {v}.tzinfo is {UTC})"
INLINE[_datetime_native] = _same_class(datetime, _NAIVE_OR_UTC, UTC=UTC)
INLINE[_date_native] = _same_class(date)
INLINE[_uuid_native] = _same_class(UUID)

#: LEAVES_OUT for data that only orjson will read.
NATIVE_OUT: dict[Any, Out] = {
    **LEAVES_OUT,
    **{datetime: _datetime_native, date: _date_native, UUID: _uuid_native},
}
