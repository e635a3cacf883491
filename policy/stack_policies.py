"""The policy pack's stack-wide policies: what only the whole set of resources shows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, StackValidationArgs, StackValidationPolicy

try:  # the package `policy` (the tests), or the pack's own directory (pulumi preview --policy-pack)
    from .common import CRD_OWNERS, ENVIRONMENT_SCHEMA, WORKLOAD_TYPES, environment, get
except ImportError:
    from common import (  # type: ignore[no-redef,import-not-found]
        CRD_OWNERS,
        ENVIRONMENT_SCHEMA,
        WORKLOAD_TYPES,
        environment,
        get,
    )


# ---- stack-wide ----------------------------------------------------------------------------------


def _pod_labels(resource_type: str, props: Mapping[str, Any]) -> dict[str, str]:
    path = (*WORKLOAD_TYPES.get(resource_type, ())[:-1], "metadata", "labels")
    return dict(get(props, *path) or {})


def _pdb_for_replicated_workloads(args: StackValidationArgs, report: ReportViolation) -> None:
    scaled = {
        get(r.props, "spec", "scaleTargetRef", "name"): get(r.props, "spec", "minReplicas") or 1
        for r in args.resources
        if r.resource_type == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
    }
    budgets = [
        (get(r.props, "metadata", "namespace"), get(r.props, "spec", "selector", "matchLabels") or {})
        for r in args.resources
        if r.resource_type == "kubernetes:policy/v1:PodDisruptionBudget"
    ]
    for r in args.resources:
        if r.resource_type not in {"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"}:
            continue
        name = get(r.props, "metadata", "name")
        replicas = max(get(r.props, "spec", "replicas") or 1, scaled.get(name, 0))
        if replicas < 2:
            continue
        namespace, labels = get(r.props, "metadata", "namespace"), _pod_labels(r.resource_type, r.props)
        if not any(ns == namespace and sel and sel.items() <= labels.items() for ns, sel in budgets):
            report(
                f"{r.resource_type.rsplit(':', 1)[-1]} {namespace}/{name} runs {replicas} replicas "
                "but no PodDisruptionBudget selects its pods",
                None,
            )


pdb_for_replicated_workloads = StackValidationPolicy(
    name="pdb-for-replicated-workloads",
    description="Every workload with more than one replica has a PodDisruptionBudget.",
    validate=_pdb_for_replicated_workloads,
)


def crd_owner(resource: Any) -> str | None:
    """The chart (or CRD file) that installs this resource's CRD, for releases and CRD files."""
    if resource.resource_type == "kubernetes:helm.sh/v3:Release":
        return str(resource.props.get("chart"))
    if resource.resource_type == "kubernetes:yaml/v2:ConfigFile" and "konghq" in str(resource.props.get("file", "")):
        return "kong-crds"
    return None


def _custom_resources_after_their_crds(args: StackValidationArgs, report: ReportViolation) -> None:
    owners = {crd_owner(r): r for r in args.resources if crd_owner(r)}
    for resource in args.resources:
        api_version = str(resource.props.get("apiVersion") or "")
        owner_chart = CRD_OWNERS.get(api_version.split("/", 1)[0]) if "/" in api_version else None
        owner = owners.get(owner_chart)
        if owner is None:
            continue  # the CRD is installed outside this stack
        seen, queue = set(), list(resource.dependencies)
        while queue:
            dependency = queue.pop()
            if dependency.urn in seen:
                continue
            seen.add(dependency.urn)
            queue.extend(dependency.dependencies)
        if owner.urn not in seen:
            report(
                f"{resource.props.get('kind')} {resource.name} does not depend on {owner.name}, which installs its CRD",
                None,
            )


custom_resources_after_their_crds = StackValidationPolicy(
    name="custom-resources-after-their-crds",
    description="A custom resource is never created before the release (or file) that defines its CRD.",
    validate=_custom_resources_after_their_crds,
)


# Keys the program owns (pinned gateway keys, service clients' signing keys, the database CA):
# a new one breaks every client that pinned, holds or trusts the old one.
PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
# Custom resources whose deletion or replacement loses data, or the backups of it.
STATEFUL_KINDS = {
    ("postgresql.cnpg.io", "Cluster"),
    ("postgresql.cnpg.io", "ScheduledBackup"),
    ("barmancloud.cnpg.io", "ObjectStore"),
    ("elasticsearch.k8s.elastic.co", "Elasticsearch"),
}


def _stateful_protected(args: StackValidationArgs, report: ReportViolation) -> None:
    """Prod: stateful objects, the namespaces that hold them and the releases that define their CRDs
    are protected, so neither a destroy nor a replacing change can delete them."""
    if environment(args) != "prod":
        return
    releases = {crd_owner(r): r for r in args.resources if crd_owner(r)}
    namespaces = {
        get(r.props, "metadata", "name"): r for r in args.resources if r.resource_type == "kubernetes:core/v1:Namespace"
    }
    needed: dict[str, Any] = {}
    for r in args.resources:
        group = str(r.props.get("apiVersion") or "").split("/", 1)[0]
        if (group, r.props.get("kind")) not in STATEFUL_KINDS:
            continue
        needed[f"{r.props.get('kind')} {r.name}"] = r
        namespace = namespaces.get(get(r.props, "metadata", "namespace"))
        if namespace is not None:
            needed[f"the namespace {namespace.name} that holds {r.props.get('kind')} {r.name}"] = namespace
        release = releases.get(CRD_OWNERS.get(group))
        if release is not None:
            needed[f"the release {release.name} that defines the CRD of {r.props.get('kind')} {r.name}"] = release
    for r in args.resources:
        if r.resource_type == PRIVATE_KEY:
            needed[f"the private key {r.name} (clients pin or hold it)"] = r
    for what, resource in needed.items():
        if not resource.opts.protect:
            report(f"{what} is not protected: a destroy or a replacing change would delete it", resource.urn)


stateful_protected = StackValidationPolicy(
    name="stateful-protected",
    description="Prod: stateful objects (PostgreSQL, its backups, Elasticsearch), their namespaces and CRD "
    "releases, and the program's private keys are protected.",
    validate=_stateful_protected,
    config_schema=ENVIRONMENT_SCHEMA,
)
