"""What the policy pack's policies share: the environment they judge, where workloads keep their pod
spec, which chart defines each custom resource group, and property lookups."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs, StackValidationArgs

ENVIRONMENT_SCHEMA = PolicyConfigSchema(properties={"environment": {"type": "string", "enum": ["dev", "prod"]}})

WORKLOAD_TYPES = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
# Custom resource API groups and the Helm chart (or Kong's CRD file) that defines them.
CRD_OWNERS = {
    "postgresql.cnpg.io": "cloudnative-pg",
    "barmancloud.cnpg.io": "plugin-barman-cloud",
    "cert-manager.io": "cert-manager",
    "kuma.io": "kuma",
    "elasticsearch.k8s.elastic.co": "eck-operator",
    "kibana.k8s.elastic.co": "eck-operator",
    "configuration.konghq.com": "kong-crds",
}


def get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def environment(args: ResourceValidationArgs | StackValidationArgs) -> str:
    return str(args.get_config().get("environment", "prod"))


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    path = WORKLOAD_TYPES.get(resource_type)
    spec = get(props, *path) if path else None
    return spec if isinstance(spec, Mapping) else None


def containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in ("initContainers", "containers"):
        yield from spec.get(key) or []
