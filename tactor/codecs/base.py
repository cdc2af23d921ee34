"""The codec contract: typed values <-> JSON-compatible data <-> bytes.

A codec knows nothing of actors or transports. The runtime uses the two
levels separately so that one message costs one ``dumps`` and one ``loads``:
arguments and results are turned into wire data with :meth:`Codec.to_wire`,
placed in an envelope, and the whole envelope is serialised once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import DecodeError, EncodeError

__all__ = ["Codec", "TypeCodec", "UnknownTypeHook"]

T = TypeVar("T")

#: How deeply :meth:`Codec.to_wire_any` follows nested containers.
MAX_UNTYPED_DEPTH = 256

#: Called by :meth:`Codec.json_schema` for a plain class the codec has no rule
#: for; returns the schema to use, or raises to reject the class.
UnknownTypeHook = Callable[[type], dict[str, Any]]


@dataclass(frozen=True)
class TypeCodec:
    """How to marshal one user type: register it on a system with ``codecs=[...]``.

    ``to_wire`` turns a value into JSON-compatible data (str, int, float, bool,
    None, list, dict with str keys); ``from_wire`` turns such data back into a
    value and raises ``ValueError``/``TypeError`` when it does not fit.
    ``schema`` is the JSON Schema of the wire form (``{}`` means any).
    Subclasses of ``type`` are handled by the same codec.
    """

    type: type
    to_wire: Callable[[Any], Any]
    from_wire: Callable[[Any], Any]
    schema: dict[str, Any] = field(default_factory=dict)


class Codec(ABC):
    """Turns typed values into bytes and back; decoding validates.

    Implementations must never use pickle and must treat their input bytes
    as untrusted.
    """

    @abstractmethod
    def to_wire(self, value: Any, tp: Any) -> Any:
        """Return JSON-compatible data for ``value`` as type ``tp``.

        Raises :class:`tactor.errors.EncodeError` when the value does not fit.
        """

    @abstractmethod
    def from_wire(self, data: Any, tp: Any) -> Any:
        """Return a value of type ``tp`` built from wire data, validating it.

        Raises :class:`tactor.errors.DecodeError` whose ``errors`` name each
        failing path, e.g. ``"items[0].qty: expected int, got str"``.
        """

    @abstractmethod
    def dumps(self, data: Any) -> bytes:
        """Serialise JSON-compatible data (as made by :meth:`to_wire`) to bytes."""

    @abstractmethod
    def loads(self, payload: bytes) -> Any:
        """Parse bytes into JSON-compatible data; raises ``DecodeError`` on bad bytes."""

    @abstractmethod
    def json_schema(self, tp: Any, on_unknown: UnknownTypeHook | None = None) -> dict[str, Any]:
        """Return the JSON Schema of ``tp``'s wire form.

        This is also the support check: a type the codec cannot marshal raises
        :class:`tactor.errors.SchemaError` saying which part is unsupported.
        A plain user class with no rule goes to ``on_unknown`` when given.
        """

    @abstractmethod
    def register(self, codec: TypeCodec) -> None:
        """Teach this codec (and only this one) a user type."""

    @abstractmethod
    def copy(self) -> Codec:
        """Return an independent codec with the same rules."""

    @abstractmethod
    def knows(self, tp: type) -> bool:
        """Whether ``tp`` is a user type registered on this codec."""

    def to_wire_any(self, value: Any, depth: int = 0) -> Any:
        """Wire data for ``value`` by its runtime type, for senders that know no schema.

        Containers (``dict`` with ``str`` keys, ``list``, ``tuple``, ``set``)
        are encoded element by element; anything else as its own class.
        Raises :class:`tactor.errors.EncodeError` for what cannot be sent.
        """
        if depth > MAX_UNTYPED_DEPTH:
            raise EncodeError("cannot encode the value: containers nested too deeply")
        if isinstance(value, Mapping):
            data: dict[str, Any] = {}
            for key, element in value.items():
                if not isinstance(key, str):
                    raise EncodeError(
                        f"cannot encode a dict with a {type(key).__name__} key without a "
                        "type: use str keys, or give a type"
                    )
                data[key] = self.to_wire_any(element, depth + 1)
            return data
        if isinstance(value, list | tuple | set | frozenset):
            return [self.to_wire_any(element, depth + 1) for element in value]
        return self.to_wire(value, type(value))

    def check_wire(self, data: Any, tp: Any, what: str) -> None:
        """Raise :class:`EncodeError` if wire ``data`` would not be read as ``tp``.

        :meth:`to_wire` does not validate deeply: ``"x"`` goes out as an ``int``
        and fails only where it is read. A one-way message (a tell, an event, a
        queue item) has nobody to tell of that, so its sender reads its data back
        as the receiver will, and refuses it here; the message lists each problem
        as ``"path: what was wrong"``, after ``what`` (which names the message).
        """
        try:
            self.from_wire(data, tp)
        except DecodeError as exc:
            raise EncodeError(f"{what}: {'; '.join(exc.errors) or exc}") from None

    def encode(self, value: T, tp: Any) -> bytes:
        """``value`` as type ``tp`` to bytes."""
        return self.dumps(self.to_wire(value, tp))

    def decode(self, payload: bytes, tp: Any) -> Any:
        """Bytes to a validated value of type ``tp``."""
        return self.from_wire(self.loads(payload), tp)
