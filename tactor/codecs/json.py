"""The JSON codec: cattrs turns typed values into JSON data and back, orjson does the bytes.

Decoding is strict and validating (see :mod:`tactor.codecs.converter` for the
wire rules); it never uses pickle and treats input as untrusted. Hooks are
generated once per type and cached, so a call costs one dictionary lookup
before the generated code runs.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from math import isfinite
from typing import Any
from uuid import UUID

import orjson
from cattrs.errors import ClassValidationError, IterableValidationError

from tactor.codecs.base import Codec, TypeCodec, UnknownTypeHook
from tactor.codecs.converter import (
    In,
    Out,
    WireError,
    build_converter,
    mismatch,
    show,
)
from tactor.codecs.jsonschema import NoneType, SchemaWalker, type_name
from tactor.errors import DecodeError, EncodeError, SchemaError

__all__ = ["JsonCodec", "error_paths"]


# --- leaf types: their JSON forms -----------------------------------------------


def _exact(cls: type, label: str) -> In:
    def structure_exact(value: Any, _: Any) -> Any:
        if value.__class__ is cls:  # exact: bool is not an int here, nor "1"
            return value
        raise mismatch(label, value)

    return structure_exact


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

    return structure_from_string


def _parse_decimal(text: str) -> Decimal:
    # Decimal() alone also takes "NaN", "Infinity", " 1 ", "1_000" and non-ASCII
    # digits; what is left matches DECIMAL_PATTERN (cheaper than the regex).
    value = Decimal(text)
    if value.is_finite() and text.isascii() and "_" not in text and text == text.strip():
        return value
    raise ValueError(text)


_decimal_text = _from_string("Decimal", _parse_decimal)


def _decimal_in(value: Any, tp: Any) -> Decimal:
    return Decimal(value) if value.__class__ is int else _decimal_text(value, tp)


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


_LEAVES_IN: dict[Any, In] = {
    **dict.fromkeys((None, NoneType), _exact(NoneType, "None")),
    **{bool: _exact(bool, "bool"), int: _exact(int, "int"), str: _exact(str, "str")},
    **{float: _float_in, Decimal: _decimal_in, timedelta: _timedelta_in},
    bytes: _from_string("bytes (base64)", _b64decode),
    datetime: _from_string("datetime", datetime.fromisoformat),
    date: _from_string("date", date.fromisoformat),
    time: _from_string("time", time.fromisoformat),
    UUID: _from_string("UUID", UUID),
}
_LEAVES_OUT: dict[Any, Out] = {
    **{float: _float_out, Decimal: _decimal_out, timedelta: _timedelta_out, bytes: _b64encode},
    **{datetime: datetime.isoformat, date: date.isoformat, time: time.isoformat, UUID: str},
}


_JSON_CLASSES: dict[str, tuple[type, ...]] = {
    **{"null": (NoneType,), "boolean": (bool,), "integer": (int,), "number": (int, float)},
    **{"string": (str,), "array": (list,), "object": (dict,)},
}


def _wire_classes(walker: SchemaWalker, member: Any) -> tuple[frozenset[type] | None, int]:
    """The classes a member's JSON value may have (None: any) and its try-order rank.

    Read off the member's schema, so registered types route by their TypeCodec's.
    Lower ranks go first: value sets, formatted or structured values, plain
    numbers, plain strings, anything.
    """
    schema = walker.schema(member)
    while "$ref" in schema or "allOf" in schema:
        ref = schema.get("$ref")
        schema = walker.defs[ref.rpartition("/")[2]] if ref else schema["allOf"][0]
    if "enum" in schema or "const" in schema:
        return frozenset(type(v) for v in schema.get("enum", [schema.get("const")])), 0
    kinds = schema.get("type")
    if kinds is None:
        return None, 4
    kinds = [kinds] if isinstance(kinds, str) else kinds
    classes = frozenset(c for k in kinds for c in _JSON_CLASSES.get(k, ()))
    if schema == {"type": "string"}:
        return classes, 3
    # A date-only string also parses as a datetime, and "abcd" as base64.
    late = kinds == ["number"] or "contentEncoding" in schema
    return classes, 2 if late or schema.get("format") == "date-time" else 1


class JsonCodec(Codec):
    """Typed values <-> JSON via cattrs (hooks generated per type) and orjson.

    ``codecs`` are user types to register straight away (see :meth:`register`).
    """

    def __init__(self, codecs: Iterable[TypeCodec] = ()) -> None:
        self._user: dict[type, TypeCodec] = {}
        leaves = (self._user_schema, _LEAVES_IN, _LEAVES_OUT, _wire_classes)
        self._fast = build_converter(*leaves, detailed=False)
        self._detailed = build_converter(*leaves, detailed=True)
        self._encoders: dict[Any, Out] = {}
        self._decoders: dict[Any, tuple[In, In]] = {}
        for codec in codecs:
            self.register(codec)

    # --- values <-> wire data -------------------------------------------------

    def to_wire(self, value: Any, tp: Any) -> Any:
        """Return JSON-compatible data for ``value`` as ``tp``.

        Does not validate deeply. Raises :class:`EncodeError` naming the type
        when ``tp`` is unsupported or the value cannot be converted (e.g. a
        non-finite float).
        """
        try:
            hook = self._encoders[tp]
        except (KeyError, TypeError):  # TypeError: an unhashable hint, not cached
            hook = self._encoder(tp)
        try:
            return hook(value)
        except RecursionError:
            raise EncodeError(f"cannot encode {type_name(tp)}: value nested too deeply") from None
        except Exception as exc:
            raise EncodeError(f"cannot encode {type_name(tp)}: {exc}") from exc

    def from_wire(self, data: Any, tp: Any) -> Any:
        """Return a value of type ``tp`` built from wire ``data``, validating it.

        Raises :class:`DecodeError` listing every problem as ``"path: problem"``,
        and :class:`SchemaError` when ``tp`` itself is unsupported.
        """
        try:
            fast, detailed = self._decoders[tp]
        except (KeyError, TypeError):
            fast, detailed = self._decoder(tp)
        try:
            return fast(data, tp)
        except RecursionError:
            raise DecodeError(f"cannot decode {type_name(tp)}", [_TOO_DEEP]) from None
        except Exception:  # re-run with detailed validation to say what is wrong
            pass
        try:
            return detailed(data, tp)
        except Exception as exc:
            try:
                errors = error_paths(exc)
            except RecursionError:  # met in the error tree, or walking it
                errors = [_TOO_DEEP]
            if len(errors) > _MAX_ERRORS:  # the input is untrusted: keep the message bounded
                more = f"$: and {len(errors) - _MAX_ERRORS} more problems"
                errors = [*errors[:_MAX_ERRORS], more]
            raise DecodeError(f"cannot decode {type_name(tp)}", errors) from exc

    def _encoder(self, tp: Any) -> Out:
        try:
            self._check(tp)
        except SchemaError as exc:
            raise EncodeError(f"cannot encode {type_name(tp)}: {exc}") from exc
        hook = self._fast.get_unstructure_hook(tp)
        _cache(self._encoders, tp, hook)
        return hook

    def _decoder(self, tp: Any) -> tuple[In, In]:
        self._check(tp)
        hooks = (self._fast.get_structure_hook(tp), self._detailed.get_structure_hook(tp))
        _cache(self._decoders, tp, hooks)
        return hooks

    def _check(self, tp: Any) -> None:
        # The schema walk is the support check: the converter would quietly pass
        # Any through, or build lenient hooks for types without rules.
        SchemaWalker(self._user_schema).document(tp)

    # --- wire data <-> bytes --------------------------------------------------

    def dumps(self, data: Any) -> bytes:
        """Serialise JSON-compatible data to bytes; raises :class:`EncodeError` if it is not.

        orjson refuses ints outside 64 bits and strings with lone surrogates.
        """
        try:
            return orjson.dumps(data)
        except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
            raise EncodeError(f"cannot serialise to JSON: {exc}") from exc

    def loads(self, payload: bytes) -> Any:
        """Parse JSON bytes; raises :class:`DecodeError` for malformed or non-UTF-8 input."""
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"malformed JSON: {exc}") from None

    # --- types ----------------------------------------------------------------

    def json_schema(self, tp: Any, on_unknown: UnknownTypeHook | None = None) -> dict[str, Any]:
        """Return the JSON Schema of ``tp``'s wire form; raises :class:`SchemaError` if unsupported.

        A plain class with no rule goes to ``on_unknown`` when given.
        """
        return SchemaWalker(self._user_schema, on_unknown).document(tp)

    def register(self, codec: TypeCodec) -> None:
        """Teach this codec (only) ``codec.type`` and its subclasses; replaces an earlier rule.

        Raises :class:`SchemaError` when ``codec.type`` is not a class.
        """
        if not isinstance(codec.type, type):
            raise SchemaError(f"TypeCodec.type must be a class, not {codec.type!r}")
        self._user[codec.type] = codec
        structure = _user_in(codec)
        for conv in (self._fast, self._detailed):
            # The per-class table (singledispatch) covers subclasses and beats every predicate.
            conv.register_unstructure_hook(codec.type, codec.to_wire)
            conv.register_structure_hook(codec.type, structure)
        # Hooks generated earlier may have baked in the old rule for this type.
        self._encoders.clear()
        self._decoders.clear()

    def copy(self) -> JsonCodec:
        """Return an independent codec with the same registered types."""
        return JsonCodec(self._user.values())

    def knows(self, tp: type) -> bool:
        """Whether ``tp`` is a registered user type (or a subclass of one)."""
        return isinstance(tp, type) and self._user_codec(tp) is not None

    def _user_codec(self, cls: type) -> TypeCodec | None:
        for base in cls.__mro__:
            codec = self._user.get(base)
            if codec is not None:
                return codec
        return None

    def _user_schema(self, cls: type) -> dict[str, Any] | None:
        codec = self._user_codec(cls) if self._user else None
        return None if codec is None else codec.schema


def _user_in(codec: TypeCodec) -> In:
    from_wire, name = codec.from_wire, codec.type.__name__

    def structure_user(value: Any, _: Any) -> Any:
        try:
            return from_wire(value)
        except Exception as exc:  # user code on untrusted data: any failure is a data error
            raise WireError(f"invalid {name}: {exc}") from exc

    return structure_user


def _cache(cache: dict[Any, Any], tp: Any, hook: Any) -> None:
    # An unhashable hint (e.g. Annotated with a dict) is not cached: rebuilt each time.
    with contextlib.suppress(TypeError):
        cache[tp] = hook


_TOO_DEEP = "$: nested too deeply"
_MAX_ERRORS = 50


def error_paths(exc: BaseException, path: str = "") -> list[str]:
    """Flatten cattrs' detailed validation errors into ``"path: problem"`` strings.

    Fields are joined with ``.``, list indexes and dict keys are written
    ``[i]``; an empty path (the value itself) is written ``$``. Raises
    ``RecursionError`` again when it finds one (the data was too deep).
    """
    if isinstance(exc, RecursionError):
        raise exc
    if isinstance(exc, IterableValidationError):
        with_notes, without = exc.group_exceptions()
        found = [e for sub, note in with_notes for e in error_paths(sub, _index(path, note.index))]
        return found + [e for sub in without for e in error_paths(sub, path)]
    if isinstance(exc, ClassValidationError):
        fields, without = exc.group_exceptions()
        found = [e for sub, note in fields for e in error_paths(sub, _field(path, note.name))]
        name = getattr(exc.cl, "__name__", "value")
        return found + [f"{path or '$'}: invalid {name}: {_describe(sub)}" for sub in without]
    if isinstance(exc, BaseExceptionGroup):
        return [e for sub in exc.exceptions for e in error_paths(sub, path)]
    return [f"{path or '$'}: {_describe(exc)}"]


def _index(path: str, index: int | str) -> str:
    return f"{path or '$'}[{index}]"


def _field(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _describe(exc: BaseException) -> str:
    if isinstance(exc, WireError):
        return str(exc)
    if isinstance(exc, KeyError):  # cattrs looks fields up with o["name"]
        return "required field missing"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
