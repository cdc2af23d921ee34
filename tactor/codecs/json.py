"""The JSON codec: cattrs turns typed values into JSON data and back, orjson does the bytes.

Decoding is strict and validating (see :mod:`tactor.codecs.converter` for the
wire rules, :mod:`tactor.codecs.leaves` for the leaf types); it never uses
pickle and treats input as untrusted. Hooks are generated once per type
(dataclasses' by :mod:`tactor.codecs.codegen`) and cached, so a call costs one
dictionary lookup before the generated code runs. :meth:`JsonCodec.encode`
uses hooks of its own that leave some values to orjson, for the same bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any, NoReturn

import orjson
from cattrs.errors import ClassValidationError, IterableValidationError

from tactor.codecs.base import Codec, TypeCodec, UnknownTypeHook
from tactor.codecs.converter import build_converter
from tactor.codecs.jsonschema import NoneType, SchemaWalker, type_name
from tactor.codecs.leaves import INLINE, LEAVES_IN, LEAVES_OUT, NATIVE_OUT
from tactor.codecs.wire import In, Out, WireConverter, WireError
from tactor.errors import DecodeError, EncodeError, SchemaError

__all__ = ["JsonCodec", "error_paths"]


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
        rules = (self._user_schema, LEAVES_IN, LEAVES_OUT, _wire_classes)
        self._fast = build_converter(*rules, detailed=False, inline=INLINE)
        self._detailed = build_converter(*rules, detailed=True, inline=INLINE)
        # For encode(): the same bytes, with values that orjson writes alike left to it.
        native = (self._user_schema, LEAVES_IN, NATIVE_OUT, _wire_classes)
        self._native = build_converter(*native, detailed=False, inline=INLINE)
        self._encoders: dict[Any, Out] = {}
        self._native_encoders: dict[Any, Out] = {}
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
        return self._unstructure(self._encoders, self._fast, value, tp)

    def encode(self, value: Any, tp: Any) -> bytes:
        """``value`` as type ``tp`` to bytes: the bytes of ``dumps(to_wire(value, tp))``.

        Skips some of the work: datetimes, UUIDs and enum members go to orjson
        as they are where it writes them as the wire rules would (see
        :mod:`tactor.codecs.leaves`). Raises :class:`EncodeError` as those do.
        """
        return self.dumps(self._unstructure(self._native_encoders, self._native, value, tp))

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
        except Exception as exc:
            failed = exc  # explained outside this handler, so the errors are not chained to it
        return _explain(detailed, data, tp, failed)

    def decode(self, payload: bytes, tp: Any) -> Any:
        """Bytes to a validated value of type ``tp``: ``from_wire(loads(payload), tp)``."""
        return self.from_wire(self.loads(payload), tp)

    def _unstructure(self, cache: dict[Any, Out], conv: WireConverter, value: Any, tp: Any) -> Any:
        """``value`` through the hook for ``tp`` of ``conv`` (cached in ``cache``)."""
        try:
            hook = cache[tp]
        except (KeyError, TypeError):  # TypeError: an unhashable hint, not cached
            hook = self._encoder(cache, conv, tp)
        try:
            return hook(value)
        except Exception as exc:
            _cannot_encode(tp, exc)

    def _encoder(self, cache: dict[Any, Out], conv: WireConverter, tp: Any) -> Out:
        try:
            self._check(tp)
        except SchemaError as exc:
            raise EncodeError(f"cannot encode {type_name(tp)}: {exc}") from exc
        hook = conv.get_unstructure_hook(tp)
        _cache(cache, tp, hook)
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
        except TypeError as exc:
            _cannot_serialise(exc)

    def loads(self, payload: bytes) -> Any:
        """Parse JSON bytes; raises :class:`DecodeError` for malformed or non-UTF-8 input."""
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            _malformed(exc)

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
        for conv in (self._fast, self._detailed, self._native):
            # The per-class table (singledispatch) covers subclasses and beats every predicate.
            conv.register_unstructure_hook(codec.type, codec.to_wire)
            conv.register_structure_hook(codec.type, structure)
        # Hooks generated earlier may have baked in the old rule for this type.
        self._encoders.clear()
        self._native_encoders.clear()
        self._decoders.clear()

    @property
    def type_codecs(self) -> tuple[TypeCodec, ...]:
        """The user types' codecs registered on this codec, oldest first."""
        return tuple(self._user.values())

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


def _cannot_encode(tp: Any, exc: Exception) -> NoReturn:
    """Raise the EncodeError for ``exc``, raised by ``tp``'s out hook."""
    if isinstance(exc, RecursionError):
        raise EncodeError(f"cannot encode {type_name(tp)}: value nested too deeply") from None
    raise EncodeError(f"cannot encode {type_name(tp)}: {exc}") from exc


def _cannot_serialise(exc: TypeError) -> NoReturn:
    # orjson.JSONEncodeError is a TypeError
    raise EncodeError(f"cannot serialise to JSON: {exc}") from exc


def _malformed(exc: orjson.JSONDecodeError) -> NoReturn:
    raise DecodeError(f"malformed JSON: {exc}") from None


def _explain(detailed: In, data: Any, tp: Any, exc: Exception) -> Any:
    """After the fast hook raised ``exc``: the detailed hook's value, or a DecodeError."""
    if isinstance(exc, RecursionError):
        raise DecodeError(f"cannot decode {type_name(tp)}", [_TOO_DEEP]) from None
    try:
        return detailed(data, tp)  # re-run with detailed validation to say what is wrong
    except Exception as problem:
        try:
            errors = error_paths(problem)
        except RecursionError:  # met in the error tree, or walking it
            errors = [_TOO_DEEP]
        if len(errors) > _MAX_ERRORS:  # the input is untrusted: keep the message bounded
            more = f"$: and {len(errors) - _MAX_ERRORS} more problems"
            errors = [*errors[:_MAX_ERRORS], more]
        raise DecodeError(f"cannot decode {type_name(tp)}", errors) from problem


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
