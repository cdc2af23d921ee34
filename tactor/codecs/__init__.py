"""Codecs: typed values <-> JSON-compatible data <-> bytes.

:class:`JsonCodec` is the implementation; :class:`TypeCodec` teaches it a
user type, and :data:`UnknownTypeHook` lets a caller of
:meth:`Codec.json_schema` decide about classes the codec has no rule for.
"""

from tactor.codecs.base import Codec, TypeCodec, UnknownTypeHook
from tactor.codecs.json import JsonCodec
from tactor.codecs.jsonschema import type_name

__all__ = ["Codec", "JsonCodec", "TypeCodec", "UnknownTypeHook", "type_name"]
