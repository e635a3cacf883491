"""Validate custom resources against their upstream CRDs, counting pruned fields as errors.

The CRD files are the pinned upstream copies in `../shared/crds` (see its SOURCES.md for the
release of each), or in the directory named by $API_PLATFORM_CRDS_DIR. With internet access the
same files come from the upstream tags listed in docs/crds.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from e2e.kube import crd_documents
from tests.harness import ROOT


def crds_dir() -> Path:
    return Path(os.environ.get("API_PLATFORM_CRDS_DIR", ROOT.parent / "shared" / "crds"))


@cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema of every served version of every CRD."""
    directory = crds_dir()
    if not directory.is_dir():
        raise FileNotFoundError(f"no CRD directory at {directory}; set API_PLATFORM_CRDS_DIR")
    found = {}
    for crd in crd_documents([directory]):
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                found[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return found


def pruned_fields(value: Any, schema: Mapping[str, Any], path: str = "") -> Iterator[str]:
    """Paths the API server would drop: keys not declared where the schema declares properties."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, Mapping):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                yield from pruned_fields(item, properties[key], f"{path}.{key}")
            elif isinstance(additional, Mapping):
                yield from pruned_fields(item, additional, f"{path}.{key}")
            elif properties is not None and path == "" and key in {"apiVersion", "kind", "metadata"}:
                continue
            elif properties is not None or additional is False:
                yield f"{path}.{key}"
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            yield from pruned_fields(item, schema["items"], f"{path}[{index}]")


def validate(obj: Mapping[str, Any]) -> list[str]:
    """Problems of one custom resource (empty when the API server would store it as given)."""
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    schema = schemas().get(key)
    if schema is None:
        return [f"no CRD serves {key[1]} {key[0]}"]
    body = {k: v for k, v in obj.items() if v is not None}
    validator = jsonschema.Draft7Validator(schema)
    problems = [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(body)]
    problems += [f"{p}: unknown field, would be pruned" for p in pruned_fields(body, schema)]
    return problems
