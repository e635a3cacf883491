"""The generated configuration reference (JSON Schema + Markdown) is current and usable."""

from __future__ import annotations

import json

import jsonschema
import pytest

from stacks import schema
from tests.harness import CATALOGUE_DIR, stack_config


@pytest.mark.parametrize(
    "path",
    [schema.SCHEMA_PATH, schema.CATALOGUE_SCHEMA_PATH, schema.REFERENCE_PATH, schema.README_PATH],
    ids=lambda p: p.name,
)
def test_generated_file_is_current(path: object) -> None:
    expected = schema.render()[path]  # type: ignore[index]
    assert path.read_text() == expected, "stale: run `python -m stacks.schema`"  # type: ignore[attr-defined]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_committed_stacks_validate_against_the_json_schema(stack: str) -> None:
    document = json.loads(schema.SCHEMA_PATH.read_text())
    jsonschema.validate({"config": stack_config(stack)}, document)


@pytest.mark.parametrize("stack", ["dev-research", "prod-research"])
def test_committed_catalogue_stacks_validate_against_their_json_schema(stack: str) -> None:
    document = json.loads(schema.CATALOGUE_SCHEMA_PATH.read_text())
    jsonschema.validate({"config": stack_config(stack, CATALOGUE_DIR)}, document)


def test_json_schema_rejects_unknown_keys() -> None:
    document = json.loads(schema.SCHEMA_PATH.read_text())
    config = stack_config("dev")
    config["api-platform:platform"] = {**config["api-platform:platform"], "typo": 1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"config": config}, document)
