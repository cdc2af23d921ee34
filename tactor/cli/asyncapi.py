"""An AsyncAPI 3.0 document of actor classes, built from :func:`tactor.json_schema`.

The document describes the service from the providers' side. Per endpoint:

- a channel for its shared mailbox (address ``ep:ENDPOINT``) and one for a
  provider's private mailbox (``pv:{provider}``: calls addressed to one
  provider, and broadcasts), each carrying the endpoint's request messages;
- per method, operations that receive its request on both, with a ``reply``
  whose address is the request's ``r`` field (the caller's inbox) — a tell
  (``k: "tell"``) gets none;
- per event handler, a channel per topic pattern it listens on, and an
  operation that receives the event there.

Payloads are tactor's wire envelopes (docs/concepts.md) with the method's
parameters, result or event in them; the schemas of user types go to
``components/schemas``. Addresses are the transport-neutral mailbox names (on
Redis the stream is ``PREFIX:mb:`` + the address). Schemas use the default
AsyncAPI schema format (JSON Schema draft-07): tuples are written as draft-07
``items`` arrays.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

import tactor

__all__ = ["asyncapi_document"]

_ID = re.compile(r"[^\w.\-]")
_ERROR_CODES = [
    "remote",
    "interface",
    "invalid_arguments",
    "unknown_method",
    "payload_too_large",
    "deadline",
    "encode",
    "malformed",
]


def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(path)}


class _Lifter:
    """Moves ``$defs`` into ``components/schemas`` and makes schemas draft-07."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def lift(self, schema: dict[str, Any], owner: str) -> dict[str, Any]:
        schema = copy.deepcopy(schema)
        renames: dict[str, str] = {}
        defs: dict[str, Any] = schema.pop("$defs", {})
        for name, definition in defs.items():
            known = self.schemas.get(name)
            if known is not None and known != self._convert(definition, {}):
                renames[name] = f"{owner}.{name}"  # another type of the same name
        for name, definition in defs.items():
            self.schemas[renames.get(name, name)] = self._convert(definition, renames)
        converted: dict[str, Any] = self._convert(schema, renames)
        return converted

    def _convert(self, node: Any, renames: dict[str, str]) -> Any:
        if isinstance(node, list):
            return [self._convert(item, renames) for item in node]
        if not isinstance(node, dict):
            return node
        converted: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                name = value.removeprefix("#/$defs/")
                converted[key] = f"#/components/schemas/{renames.get(name, name)}"
            elif key == "prefixItems":
                converted["items"] = self._convert(value, renames)
            else:
                converted[key] = self._convert(value, renames)
        return converted


def _request(endpoint: str, method: str, params: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["v", "k", "id", "ep", "m", "a", "s"],
        "properties": {
            "v": {"const": 1, "description": "the envelope's version"},
            "k": {"enum": ["call", "tell"], "description": "a call is answered at r; a tell not"},
            "id": {"type": "string", "description": "the message id, repeated in the reply"},
            "ep": {"const": endpoint},
            "m": {"const": method},
            "a": _ref("components", "schemas", params),
            "pa": {
                "type": "array",
                "description": "positional arguments (from callers without the interface), "
                "named by the parameters' order",
            },
            "r": {"type": ["string", "null"], "description": "the caller's reply inbox"},
            "d": {"type": ["number", "null"], "description": "the deadline, epoch seconds"},
            "s": {"type": "string", "description": "the sender's node id"},
        },
    }


def _reply(result: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["v", "k", "id", "p", "ok"],
        "properties": {
            "v": {"const": 1},
            "k": {"const": "reply"},
            "id": {"type": "string", "description": "the request's id"},
            "p": {"type": "string", "description": "the provider that answered"},
            "ok": {"type": "boolean"},
            "r": _ref("components", "schemas", result),
            "e": _ref("components", "schemas", "tactor.Error"),
        },
    }


def _event(topic_hint: str, body: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["v", "k", "t", "ty", "b"],
        "properties": {
            "v": {"const": 1},
            "k": {"const": "event"},
            "t": {"type": "string", "description": f"the topic (matches {topic_hint!r})"},
            "ty": {"type": "string", "description": "the event's type name"},
            "b": _ref("components", "schemas", body),
        },
    }


_ERROR = {
    "type": "object",
    "required": ["code", "type", "message"],
    "properties": {
        "code": {"enum": _ERROR_CODES},
        "type": {"type": "string", "description": "the exception's type (qualified name)"},
        "message": {"type": "string"},
        "traceback": {"type": "string"},
        "data": {"description": "an interface error's fields or arguments"},
        "errors": {"type": "array", "items": {"type": "string"}},
    },
}


class _Document:
    def __init__(self) -> None:
        self.lifter = _Lifter()
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}

    def schema(self, name: str, schema: dict[str, Any], owner: str) -> str:
        self.lifter.schemas[name] = self.lifter.lift(schema, owner)
        return name

    def message(self, name: str, payload: dict[str, Any], summary: str) -> dict[str, str]:
        self.messages[name] = {"name": name, "summary": summary, "payload": payload}
        return _ref("components", "messages", name)

    def add_actor(self, interface: dict[str, Any]) -> None:
        endpoint: str = interface["endpoint"]
        requests: dict[str, Any] = {}
        for method, parts in interface["methods"].items():
            params = self.schema(f"{endpoint}.{method}.params", parts["params"], endpoint)
            result = self.schema(f"{endpoint}.{method}.result", parts["result"], endpoint)
            summary = f"a call or tell of {endpoint}.{method}"
            requests[method] = self.message(
                f"{endpoint}.{method}.request", _request(endpoint, method, params), summary
            )
            reply = self.message(
                f"{endpoint}.{method}.reply", _reply(result), f"the reply of {endpoint}.{method}"
            )
            self.channels[f"{endpoint}.{method}.reply"] = {
                "address": None,
                "description": "The caller's inbox, named by the request's r field.",
                "messages": {"reply": reply},
            }
        self.channels[endpoint] = {
            "address": f"ep:{endpoint}",
            "description": f"The shared mailbox of {endpoint!r}: each message goes to one "
            "of its live providers.",
            "messages": requests,
        }
        self.channels[f"{endpoint}.provider"] = {
            "address": "pv:{provider}",
            "description": f"A provider's private mailbox (calls addressed to one provider "
            f"of {endpoint!r}, and broadcasts).",
            "parameters": {"provider": {"description": f"a provider id, {endpoint}@<hex>"}},
            "messages": requests,
        }
        for method in interface["methods"]:
            for channel, how in ((endpoint, ""), (f"{endpoint}.provider", ".provider")):
                self.operations[f"{endpoint}.{method}{how}"] = self._receive(
                    channel, method, f"{endpoint}.{method}.reply"
                )
        for handler, parts in interface.get("events", {}).items():
            self._add_handler(endpoint, handler, parts)

    def _receive(self, channel: str, method: str, replies: str) -> dict[str, Any]:
        return {
            "action": "receive",
            "channel": _ref("channels", channel),
            "messages": [_ref("channels", channel, "messages", method)],
            "reply": {
                "address": {
                    "location": "$message.payload#/r",
                    "description": "the caller's inbox (a call; a tell has no reply)",
                },
                "channel": _ref("channels", replies),
                "messages": [_ref("channels", replies, "messages", "reply")],
            },
        }

    def _add_handler(self, endpoint: str, handler: str, parts: dict[str, Any]) -> None:
        body = self.schema(f"{endpoint}.{handler}.event", parts["event"], endpoint)
        for index, pattern in enumerate(parts["topics"]):
            channel = f"topic.{_ID.sub('_', pattern)}"
            message = self.message(
                f"{endpoint}.{handler}.event", _event(pattern, body), f"an event {handler} takes"
            )
            found = self.channels.setdefault(
                channel,
                {"address": pattern, "description": f"Events on topics matching {pattern!r}."},
            )
            found.setdefault("messages", {})[f"{endpoint}.{handler}"] = message
            self.operations[f"{endpoint}.{handler}.{index}"] = {
                "action": "receive",
                "channel": _ref("channels", channel),
                "messages": [_ref("channels", channel, "messages", f"{endpoint}.{handler}")],
            }


def asyncapi_document(
    classes: Sequence[type[tactor.Actor]], *, title: str, version: str = "0.1.0"
) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the endpoints of ``classes`` (see the module's doc)."""
    document = _Document()
    for cls in classes:
        document.add_actor(tactor.json_schema(cls))
    schemas = {**document.lifter.schemas, "tactor.Error": _ERROR}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": version,
            "description": f"Generated by tactor {tactor.__version__} from "
            + ", ".join(f"{c.__module__}.{c.__qualname__}" for c in classes),
        },
        "defaultContentType": "application/json",
        "channels": document.channels,
        "operations": document.operations,
        "components": {"schemas": schemas, "messages": document.messages},
    }
