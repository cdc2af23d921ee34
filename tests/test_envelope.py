"""The envelope's optional trace context field ``"tc"``: absent unless traced, carried
through requests and events, and checked when parsed."""

from __future__ import annotations

import orjson
import pytest

from tactor import DecodeError
from tactor.actors.envelope import Event, parse_event, parse_request, request_wire

TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


def wire_of(trace: dict[str, str] | None) -> dict[str, object]:
    return request_wire("call", "n.1", "e", "m", {"x": 1}, "node.n", 4e9, "n", None, trace)


def test_an_untraced_message_carries_no_trace_field() -> None:
    assert "tc" not in wire_of(None)
    assert "tc" not in Event("t", "T", {}).to_wire()
    assert parse_request(wire_of(None)).trace is None


def test_the_trace_context_travels_through_requests_and_events() -> None:
    request = parse_request(orjson.loads(orjson.dumps(wire_of(TRACE))))
    assert request.trace == TRACE
    assert parse_request(request.to_wire()).trace == TRACE
    event = parse_event(orjson.loads(orjson.dumps(Event("t", "T", {"a": 1}, TRACE).to_wire())))
    assert (event.trace, event.body) == (TRACE, {"a": 1})


@pytest.mark.parametrize("bad", ["00-abc", ["traceparent"], 7, {"traceparent": 5}])
def test_a_trace_field_that_is_not_an_object_of_strings_is_malformed(bad: object) -> None:
    request = {**wire_of(None), "tc": bad}
    with pytest.raises(DecodeError, match="malformed request"):
        parse_request(request)
    with pytest.raises(DecodeError, match="'tc'"):
        parse_event({**Event("t", "T", {}).to_wire(), "tc": bad})
