"""Every object the stacks declare validates: native kinds against the Kubernetes OpenAPI schema
of the target version (strict), custom resources against their upstream CRDs (pruned fields are
errors)."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from tests import crd_schema
from tests.harness import RecordedResource, Recording

KUBERNETES_VERSION = "1.34.0"  # the API server version e2e/toolchain.sh builds
NATIVE_GROUPS = {"apps", "batch", "policy", "autoscaling"}


def is_native(obj: RecordedResource) -> bool:
    api_version = str(obj.inputs["apiVersion"])
    group = api_version.split("/", maxsplit=1)[0] if "/" in api_version else ""
    return group == "" or group in NATIVE_GROUPS or group.endswith(".k8s.io")


def native_problem(obj: dict[str, Any]) -> str | None:
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return f"{'.'.join(map(str, error.path))}: {error.message}"
    return None


def test_every_native_object_matches_the_kubernetes_schema(recording: Recording) -> None:
    objects = [o for o in recording.kubernetes_objects() if is_native(o)]
    assert len(objects) > 15
    problems = {f"{o.kind} {o.name}": native_problem(o.inputs) for o in objects}
    assert {k: v for k, v in problems.items() if v} == {}


def test_every_custom_resource_matches_its_crd(recording: Recording) -> None:
    objects = [o for o in recording.kubernetes_objects() if not is_native(o)]
    assert objects
    problems = {f"{o.kind} {o.name}": crd_schema.validate(o.inputs) for o in objects}
    assert {k: v for k, v in problems.items() if v} == {}


def test_strict_native_validation_rejects_unknown_fields(recordings: dict[str, Recording]) -> None:
    deployment = copy.deepcopy(recordings["prod"].named("kong-deployment").inputs)
    deployment["spec"]["replica"] = 3
    assert native_problem(deployment) is not None


def test_crd_validation_reports_pruned_fields_and_bad_values(recordings: dict[str, Recording]) -> None:
    cluster = copy.deepcopy(recordings["prod"].named("postgres-cluster").inputs)
    cluster["spec"]["backups"] = {"typo": True}
    cluster["spec"]["primaryUpdateMethod"] = "reboot"
    problems = crd_schema.validate(cluster)
    assert ".spec.backups: unknown field, would be pruned" in problems
    assert any(p.startswith("spec.primaryUpdateMethod: 'reboot' is not one of") for p in problems), problems
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {}}
    assert crd_schema.validate(unknown) == ["no CRD serves Widget example.com/v1"]


@pytest.mark.parametrize(
    "key",
    [
        ("postgresql.cnpg.io/v1", "Cluster"),
        ("kuma.io/v1alpha1", "MeshTrafficPermission"),
        ("cert-manager.io/v1", "Certificate"),
        ("configuration.konghq.com/v1", "KongPlugin"),
    ],
)
def test_pinned_crds_are_available(key: tuple[str, str]) -> None:
    assert key in crd_schema.schemas()
