"""``tactor schema --format asyncapi``: an AsyncAPI 3.0.0 document, valid against the
published JSON Schema of AsyncAPI 3.0.0 (a fixture: tests/fixtures/asyncapi/README.md)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tactor.cli.asyncapi import asyncapi_document
from tests.cli import APP, tactor
from tests.cli_app import Pricing, Slow

FIXTURE = Path(__file__).parent / "fixtures" / "asyncapi" / "asyncapi-3.0.0-without-id.json"


@cache
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(FIXTURE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def problems(document: dict[str, Any]) -> list[str]:
    found = validator().iter_errors(document)
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in found]


def resolve(document: dict[str, Any], ref: dict[str, str]) -> Any:
    """What ``ref`` points to, following references to references."""
    node: Any = document
    for part in ref["$ref"].removeprefix("#/").split("/"):
        node = node[part]
    return resolve(document, node) if "$ref" in node else node


@pytest.mark.slow
def test_the_command_prints_a_valid_document() -> None:
    ran = tactor("schema", f"{APP}:Pricing", f"{APP}:Slow", "--format", "asyncapi")
    assert ran.status == 0, ran
    document = ran.json()
    assert problems(document) == []
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] == "cli-pricing, cli-slow"


def test_calls_have_channels_operations_with_replies_and_payloads() -> None:
    document = asyncapi_document([Pricing, Slow], title="t", version="1.2.3")
    assert problems(document) == []
    assert document["channels"]["cli-pricing"]["address"] == "ep:cli-pricing"
    assert document["channels"]["cli-pricing.provider"]["address"] == "pv:{provider}"
    quote = document["operations"]["cli-pricing.quote"]
    assert quote["action"] == "receive"
    assert resolve(document, quote["channel"]) is document["channels"]["cli-pricing"]
    request = resolve(document, quote["messages"][0])
    payload = request["payload"]
    assert payload["properties"]["m"] == {"const": "quote"}
    params = resolve(document, payload["properties"]["a"])
    assert set(params["properties"]) == {"items", "coupon"}
    item = resolve(document, params["properties"]["items"]["items"])
    assert item["properties"]["qty"]["type"] == "integer"  # a user type, in components
    assert quote["reply"]["address"]["location"] == "$message.payload#/r"
    reply = resolve(document, quote["reply"]["messages"][0])
    assert "string" in resolve(document, reply["payload"]["properties"]["r"])["type"]  # Decimal
    totals = resolve(document, {"$ref": "#/components/schemas/cli-pricing.totals.params"})
    pair = totals["properties"]["pairs"]["items"]
    assert "prefixItems" not in pair and len(pair["items"]) == 2  # a draft-07 tuple


def test_topics_have_channels_and_receive_operations() -> None:
    document = asyncapi_document([Pricing], title="t")
    assert document["channels"]["topic.PriceChanged"]["address"] == "PriceChanged"
    assert document["channels"]["topic.stock._"]["address"] == "stock.#"
    operation = document["operations"]["cli-pricing.on_price.0"]
    assert operation["action"] == "receive" and "reply" not in operation
    event = resolve(document, operation["messages"][0])
    body = resolve(document, event["payload"]["properties"]["b"])
    assert set(body["properties"]) == {"sku", "price"}


def test_the_validation_can_fail() -> None:
    document = asyncapi_document([Pricing], title="t")
    broken = copy.deepcopy(document)
    broken["operations"]["cli-pricing.quote"]["action"] = "publish"  # AsyncAPI 2's word
    assert problems(broken) != []
    broken = copy.deepcopy(document)
    del broken["info"]["version"]
    assert problems(broken) != []
