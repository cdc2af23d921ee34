"""Generated dataclass hooks: straight-line code where cattrs calls a hook per field.

The fast structure hook and the unstructure hook of a dataclass are generated
here. Where a field's hook has a known shape (:data:`~tactor.codecs.wire.Shape`:
an exact leaf, ``X | None``, an array, an object with str keys, a leaf with
an inline form, another generated record), the code does that hook's work in
place, loops and nested records included, instead of calling it; every other
hook is called as cattrs' generated code calls it. So a generated hook
accepts, returns and raises what cattrs' code with the same hooks would (the
fast structure hook may raise other exceptions: it only has to reject), with
fewer Python calls, which on CPython cost about as much as simple hooks' work.
"""

from __future__ import annotations

import dataclasses
import itertools
import linecache
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, cast, get_args, get_origin

from cattrs.fns import identity
from cattrs.gen._consts import AttributeOverride

from tactor.codecs.jsonschema import FieldInfo, NoneType, record_fields, record_origin, type_name
from tactor.codecs.wire import (
    Entries,
    Exact,
    In,
    Inline,
    Items,
    Maybe,
    Out,
    OutEntries,
    OutItems,
    Record,
    WireConverter,
    WireError,
    late_in,
    mismatch,
)

__all__ = ["dataclass_in", "dataclass_out"]

#: Nesting of blocks in one function: Python allows 20.
_MAX_DEPTH = 12
#: Records inlined into one function; the others are called.
_MAX_INLINED = 24


def dataclass_in(conv: WireConverter, tp: Any) -> In | None:
    """The generated fast structure hook of dataclass ``tp``; None leaves it to cattrs.

    Raises RecursionError when ``tp``'s hook is being generated already, as
    cattrs does: :func:`~tactor.codecs.wire.late_in` then looks the hook up
    at call time.
    """
    with _generating(conv, tp, "in"):
        fields = record_fields(tp)
        if _overridden(fields):
            return None
        hooks = [late_in(conv, f.type) for f in fields]
        if any(hook == conv._structure_call for hook in hooks):
            return None  # cattrs calls the type itself there: leave the class to cattrs
    record = Record(tp, fields, hooks)
    code = _Code(conv, tp)
    code.emit(1, f"return {_record_in(code, record, 'o', 1)}")
    return cast(In, code.function(record, "structure", "o, _=None"))


def dataclass_out(conv: WireConverter, tp: Any) -> Out | None:
    """The generated unstructure hook of dataclass ``tp``; None leaves it to cattrs."""
    with _generating(conv, tp, "out"):
        fields = record_fields(tp)
        if _overridden(fields):
            return None
        hooks: list[Out] = []
        for field in fields:
            try:
                hooks.append(conv.get_unstructure_hook(field.type))
            except RecursionError:  # as in cattrs' code: go by the value's own class
                hooks.append(conv.unstructure)
    record = Record(tp, fields, hooks)
    code = _Code(conv, tp)
    code.emit(1, f"return {_record_out(code, record, 'o', 1)}")
    return cast(Out, code.function(record, "unstructure", "o"))


# --- structure -----------------------------------------------------------------


def _record_in(code: _Code, record: Record, data: str, depth: int) -> str:
    """Emit lines reading the record's fields from ``data``; returns the constructor call."""
    cls = cast(type, record_origin(record.tp))
    kw_only = {f.name for f in dataclasses.fields(cls) if f.kw_only}
    if not any(f.required for f in record.fields):
        # With a required field, data[...] fails on any non-object, as in cattrs' code.
        label = type_name(record.tp)
        code.emit(depth, f"if {data}.__class__ is not dict: raise mismatch({label!r}, {data})")
    sent = code.local() if not all(f.required for f in record.fields) else ""
    if sent:  # as in cattrs' code, fields with defaults are passed only when sent
        code.emit(depth, f"{sent} = {{}}")
    args: list[str] = []
    for field, hook in zip(record.fields, record.hooks, strict=True):
        key, var = repr(field.name), code.local()
        at = depth if field.required else depth + 1
        if not field.required:
            code.emit(depth, f"if {key} in {data}:")
        code.emit(at, f"{var} = {data}[{key}]")
        _structure(code, hook, field.type, var, at)
        if not field.required:
            code.emit(at, f"{sent}[{key}] = {var}")
        else:
            args.append(f"{field.name}={var}" if field.name in kw_only else var)
    if sent:
        args.append(f"**{sent}")
    return f"{code.bind(cls, 'cls')}({', '.join(args)})"


def _structure(code: _Code, hook: In, tp: Any, var: str, depth: int) -> None:
    """Emit lines turning the wire value in ``var`` into its value, left in ``var``."""
    shape = code.shape(hook, depth)
    if isinstance(shape, Exact):
        cls = code.bind(shape.cls, "c")
        test = f"{var} is not None" if shape.cls is NoneType else f"{var}.__class__ is not {cls}"
        code.emit(depth, f"if {test}: raise mismatch({type_name(shape.cls)!r}, {var})")
    elif isinstance(shape, Maybe):
        code.emit(depth, f"if {var} is not None:")
        _structure(code, shape.hook, shape.tp, var, depth + 1)
    elif isinstance(shape, Items):
        out, item = code.local(), code.local()
        code.emit(depth, f"if {var}.__class__ is not list: raise mismatch({shape.label!r}, {var})")
        code.emit(depth, f"{out} = []")
        code.emit(depth, f"for {item} in {var}:")
        _structure(code, shape.hook, shape.tp, item, depth + 1)
        code.emit(depth + 1, f"{out}.append({item})")
        build = out if shape.build is list else f"{code.bind(shape.build, 'build')}({out})"
        code.emit(depth, f"{var} = {build}")
    elif isinstance(shape, Entries):
        out, key, item = code.local(), code.local(), code.local()
        code.emit(depth, f"if {var}.__class__ is not dict: raise mismatch({shape.label!r}, {var})")
        code.emit(depth, f"{out} = {{}}")
        code.emit(depth, f"for {key}, {item} in {var}.items():")
        code.emit(depth + 1, f"if {key}.__class__ is not str: raise WireError({shape.key_error!r})")
        _structure(code, shape.hook, shape.tp, item, depth + 1)
        code.emit(depth + 1, f"{out}[{key}] = {item}")
        code.emit(depth, f"{var} = {out}")
    elif isinstance(shape, Record):
        with code.inlining(shape.tp):
            made = _record_in(code, shape, var, depth)
        code.emit(depth, f"{var} = {made}")
    elif isinstance(shape, Inline):
        test, value = code.inline(shape, var)
        call = f"{code.bind(hook, 'h')}({var}, {code.bind(tp, 't')})"
        if test == "True":
            code.emit(depth, f"{var} = {value}")
        else:
            code.emit(depth, f"{var} = {value} if {test} else {call}")
    else:
        code.emit(depth, f"{var} = {code.bind(hook, 'h')}({var}, {code.bind(tp, 't')})")


# --- unstructure ---------------------------------------------------------------


def _record_out(code: _Code, record: Record, value: str, depth: int) -> str:
    """Emit lines reading the record's fields from ``value``; returns its wire dict."""
    entries: list[str] = []
    for field, hook in zip(record.fields, record.hooks, strict=True):
        # Field by field, in order, as in cattrs' code: the first failure is the one raised.
        var = code.local()
        code.emit(depth, f"{var} = {value}.{field.name}")
        data = _unstructure(code, hook, var, depth)
        if data != var:
            code.emit(depth, f"{var} = {data}")
        entries.append(f"{field.name!r}: {var}")
    return f"{{{', '.join(entries)}}}"


def _unstructure(code: _Code, hook: Out, value: str, depth: int) -> str:
    """Emit lines computing the wire data of the local ``value``; returns an expression for it."""
    if hook is identity:
        return value
    shape = code.shape(hook, depth)
    if isinstance(shape, OutItems):
        out, item = code.local(), code.local()
        code.emit(depth, f"{out} = []")
        code.emit(depth, f"for {item} in {value}:")
        data = _unstructure(code, shape.hook, item, depth + 1)
        code.emit(depth + 1, f"{out}.append({data})")
        return out
    if isinstance(shape, OutEntries):
        out, key, item = code.local(), code.local(), code.local()
        code.emit(depth, f"{out} = {{}}")
        code.emit(depth, f"for {key}, {item} in {value}.items():")
        if shape.dump is not None:  # the key first, as in a comprehension
            code.emit(depth + 1, f"{key} = {code.bind(shape.dump, 'dump')}({key})")
        data = _unstructure(code, shape.hook, item, depth + 1)
        code.emit(depth + 1, f"{out}[{key}] = {data}")
        return out
    if isinstance(shape, Record):
        with code.inlining(shape.tp):
            return _record_out(code, shape, value, depth)
    call = f"{code.bind(hook, 'h')}({value})"
    if isinstance(shape, Inline):
        test, data = code.inline(shape, value)
        return f"{data} if {test} else {call}"
    return call


# --- shared ----------------------------------------------------------------------


class _Code:
    """The source of one generated function and the names it uses."""

    def __init__(self, conv: WireConverter, tp: Any) -> None:
        self.conv = conv
        self.names: dict[str, Any] = {"mismatch": mismatch, "WireError": WireError}
        self.lines: list[str] = []
        self._count = itertools.count()
        self._inlined = [tp]  # records inlined around the current line, outermost first
        self._budget = _MAX_INLINED

    def bind(self, value: Any, stem: str) -> str:
        """A name for ``value`` in the function's globals."""
        name = f"{stem}_{next(self._count)}"
        self.names[name] = value
        return name

    def local(self) -> str:
        """A fresh local variable."""
        return f"x{next(self._count)}"

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def shape(self, hook: Callable[..., Any], depth: int) -> Any:
        """What ``hook`` does, if the code may do it in place here (else None: call it)."""
        shape = self.conv.shapes.get(hook)
        if depth >= _MAX_DEPTH:
            return None
        if isinstance(shape, Record) and (shape.tp in self._inlined or self._budget <= 0):
            return None  # a recursive type, or enough code already
        return shape

    @contextmanager
    def inlining(self, tp: Any) -> Iterator[None]:
        self._inlined.append(tp)
        self._budget -= 1
        try:
            yield
        finally:
            self._inlined.pop()

    def inline(self, shape: Inline, value: str) -> tuple[str, str]:
        """``shape``'s test and value for the local ``value``, parenthesised."""
        names = {name: self.bind(obj, name) for name, obj in shape.names.items()}
        test = shape.test.format(v=value, **names)
        return (
            test if test == "True" else f"({test})"
        ), f"({shape.value.format(v=value, **names)})"

    def function(self, record: Record, way: str, params: str) -> Callable[..., Any]:
        name = f"{way}_{cast(type, record_origin(record.tp)).__name__}"
        source = "\n".join([f"def {name}({params}):", *self.lines]) + "\n"
        filename = f"<tactor generated {way} {type_name(record.tp)} #{next(_serial)}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), self.names)  # our code: names, reprs and bindings
        hook: Callable[..., Any] = self.names[name]
        self.conv.shapes[hook] = record
        return hook


_serial = itertools.count()
#: The hooks this thread is generating, to spot recursive types.
_busy = threading.local()


@contextmanager
def _generating(conv: WireConverter, tp: Any, way: str) -> Iterator[None]:
    busy: set[tuple[int, str, Any]] = _busy.__dict__.setdefault("hooks", set())
    job = (id(conv), way, tp)
    if job in busy:
        raise RecursionError(f"{type_name(tp)} contains itself")
    busy.add(job)
    try:
        yield
    finally:
        busy.discard(job)


def _overridden(fields: list[FieldInfo]) -> bool:
    """Whether a field carries a cattrs override (``Annotated[T, override(...)]``)."""
    return any(
        get_origin(f.type) is Annotated
        and any(isinstance(m, AttributeOverride) for m in get_args(f.type)[1:])
        for f in fields
    )
