"""The api-platform policy pack's policies (CrossGuard). `__main__.py` only builds the PolicyPack.

Each validator reads engine-shaped (camelCase) properties, the same shape the unit tests record.
Environment-aware policies take `environment` from the policy config; the per-stack config files
in `policy/config/` set it together with the enforcement level (prod: mandatory, dev: advisory).
"""

from __future__ import annotations

import re

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

DEFAULT_REGISTRIES = ["docker.io", "ghcr.io", "quay.io", "cr.fluentbit.io", "docker.elastic.co", "registry.k8s.io"]
EXACT_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.\-]+)?$")
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)$", re.I)
SECRET_TEXT = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|(password|passwd|secret|token)\s*[:=]\s*['\"]?[^\s'\"$]{6,}", re.I
)

# The pack runs from its own directory (`pulumi preview --policy-pack policy`); the tests import it
# as the package `policy`.
try:
    from .common import ENVIRONMENT_SCHEMA, containers, environment, get, pod_spec
    from .stack_policies import custom_resources_after_their_crds, pdb_for_replicated_workloads, stateful_protected
except ImportError:
    from common import (  # type: ignore[no-redef,import-not-found]
        ENVIRONMENT_SCHEMA,
        containers,
        environment,
        get,
        pod_spec,
    )
    from stack_policies import (  # type: ignore[no-redef,import-not-found]
        custom_resources_after_their_crds,
        pdb_for_replicated_workloads,
        stateful_protected,
    )


def _workload_name(args: ResourceValidationArgs) -> str:
    return f"{args.resource_type.rsplit(':', 1)[-1]} {get(args.props, 'metadata', 'name') or args.name}"


# ---- workloads --------------------------------------------------------------------------------


def _container_resources(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args.resource_type, args.props)
    for container in containers(spec or {}):
        for kind in ("requests", "limits"):
            values = get(container, "resources", kind) or {}
            missing = [r for r in ("cpu", "memory") if r not in values]
            if missing:
                report(
                    f"{_workload_name(args)}: container {container.get('name')} has no {kind} for {', '.join(missing)}",
                    None,
                )


container_resources = ResourceValidationPolicy(
    name="container-resources",
    description="Every container declares CPU and memory requests and limits.",
    validate=_container_resources,
)


def image_problem(image: str, registries: list[str]) -> str | None:
    """Why `image` may not be used, or None."""
    name, digest = [*image.split("@", 1), ""][:2]
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
    if not digest and (not tag or tag == "latest"):
        return "is not pinned to a tag or digest (latest is not a pin)"
    first = name.split("/", 1)[0]
    registry = first if "/" in name and ("." in first or ":" in first or first == "localhost") else "docker.io"
    if registry not in registries:
        return f"comes from {registry}, which is not an allowed registry ({', '.join(registries)})"
    return None


def _pinned_images(args: ResourceValidationArgs, report: ReportViolation) -> None:
    registries = list(args.get_config().get("allowedRegistries", DEFAULT_REGISTRIES))
    images = [str(c.get("image", "")) for c in containers(pod_spec(args.resource_type, args.props) or {})]
    if args.resource_type == "kubernetes:postgresql.cnpg.io/v1:Cluster":
        images.append(str(get(args.props, "spec", "imageName") or ""))
    for image in filter(None, images):
        problem = image_problem(image, registries)
        if problem:
            report(f"{args.name}: image {image} {problem}", None)


pinned_images = ResourceValidationPolicy(
    name="pinned-images",
    description="Images are pinned (no latest or untagged images) and come from allowed registries.",
    validate=_pinned_images,
    config_schema=PolicyConfigSchema(properties={"allowedRegistries": {"type": "array", "items": {"type": "string"}}}),
)


def _pod_security(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args.resource_type, args.props)
    if spec is None:
        return
    pod = spec.get("securityContext") or {}
    for container in containers(spec):
        security = container.get("securityContext") or {}
        name = f"{_workload_name(args)}: container {container.get('name')}"
        if not (
            security.get("runAsNonRoot") or (pod.get("runAsNonRoot") and security.get("runAsNonRoot") is not False)
        ):
            report(f"{name} may run as root (set runAsNonRoot)", None)
        if security.get("allowPrivilegeEscalation") is not False:
            report(f"{name} allows privilege escalation", None)
        if security.get("readOnlyRootFilesystem") is not True:
            report(f"{name} has a writable root filesystem", None)
        seccomp = get(security, "seccompProfile", "type") or get(pod, "seccompProfile", "type")
        if seccomp != "RuntimeDefault":
            report(f"{name} has no RuntimeDefault seccomp profile", None)
        if "ALL" not in (get(security, "capabilities", "drop") or []):
            report(f"{name} does not drop all capabilities", None)
        if security.get("privileged"):
            report(f"{name} is privileged", None)


pod_security = ResourceValidationPolicy(
    name="pod-security",
    description="Pods run as non-root, without privilege escalation, with a read-only root filesystem, "
    "the RuntimeDefault seccomp profile and all capabilities dropped.",
    validate=_pod_security,
)


def _no_literal_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for container in containers(pod_spec(args.resource_type, args.props) or {}):
        for env in container.get("env") or []:
            value = env.get("value")
            if SECRET_NAME.search(str(env.get("name", ""))) and value and not str(value).startswith("/"):
                report(
                    f"{_workload_name(args)}: env {env['name']} holds a literal value; use valueFrom.secretKeyRef", None
                )
    if args.resource_type == "kubernetes:core/v1:ConfigMap":
        for key, value in (args.props.get("data") or {}).items():
            if SECRET_TEXT.search(str(value)):
                report(f"ConfigMap {get(args.props, 'metadata', 'name')}: key {key} looks like a secret", None)
    for key, value in (get(args.props, "metadata", "annotations") or {}).items():
        if SECRET_TEXT.search(str(value)):
            report(f"{args.name}: annotation {key} looks like a secret", None)


no_literal_secrets = ResourceValidationPolicy(
    name="no-literal-secrets",
    description="No literal secret values in environment variables, ConfigMaps or annotations.",
    validate=_no_literal_secrets,
)


# ---- the gateway ------------------------------------------------------------------------------


def _gateway_hpa_range(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "kubernetes:autoscaling/v2:HorizontalPodAutoscaler":
        return
    if get(args.props, "spec", "scaleTargetRef", "name") != "kong":
        return
    low, high = get(args.props, "spec", "minReplicas") or 1, get(args.props, "spec", "maxReplicas")
    if environment(args) == "prod" and (low < 3 or high is None or high > 50 or high < low):
        report(f"the gateway HPA scales {low}-{high}; prod requires 3-50 (ADR-001)", None)


gateway_hpa_range = ResourceValidationPolicy(
    name="gateway-hpa-range",
    description="In prod the Kong gateway's HorizontalPodAutoscaler keeps 3 to 50 replicas.",
    validate=_gateway_hpa_range,
    config_schema=ENVIRONMENT_SCHEMA,
)


def _kong_tls13(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "kubernetes:apps/v1:Deployment":
        return
    spec = pod_spec(args.resource_type, args.props) or {}
    for container in containers(spec):
        env = {e.get("name"): e.get("value") for e in container.get("env") or []}
        if "KONG_DATABASE" not in env:  # not a Kong gateway container
            continue
        suite, protocols = env.get("KONG_SSL_CIPHER_SUITE"), env.get("KONG_SSL_PROTOCOLS")
        if suite == "modern" or (suite == "custom" and protocols == "TLSv1.3"):
            continue
        report(
            f"{_workload_name(args)}: Kong must set KONG_SSL_CIPHER_SUITE=modern for TLS 1.3 minimum "
            f"(got {suite!r}; KONG_SSL_PROTOCOLS alone is ignored unless the suite is custom)",
            None,
        )


kong_tls13 = ResourceValidationPolicy(
    name="kong-tls13",
    description="Kong accepts TLS 1.3 only (KONG_SSL_CIPHER_SUITE=modern).",
    validate=_kong_tls13,
)


def _load_balancers(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "kubernetes:core/v1:Service":
        return
    name = str(get(args.props, "metadata", "name") or args.name)
    service_type = get(args.props, "spec", "type") or "ClusterIP"
    ports = get(args.props, "spec", "ports") or []
    admin = any(str(p.get("targetPort")) in {"admin", "admin-tls", "8001", "8444"} for p in ports)
    if admin and service_type != "ClusterIP":
        report(f"Service {name} exposes the Kong admin API as {service_type}; it must stay ClusterIP", None)
    gateway_proxy = get(args.props, "metadata", "labels", "app.kubernetes.io/component") == "gateway" and name.endswith(
        "-proxy"
    )
    if service_type == "LoadBalancer" and not gateway_proxy:
        report(f"Service {name} is a LoadBalancer; only the gateway proxy may be", None)


load_balancers = ResourceValidationPolicy(
    name="load-balancers",
    description="Only the gateway proxy is a LoadBalancer, and the admin API is never exposed.",
    validate=_load_balancers,
)


# ---- data, mesh, search -------------------------------------------------------------------------


def _postgres_ha(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "kubernetes:postgresql.cnpg.io/v1:Cluster" or environment(args) != "prod":
        return
    instances = get(args.props, "spec", "instances") or 1
    if instances < 3:
        report(f"PostgreSQL cluster {args.name} has {instances} instance(s); prod requires at least 3", None)
    plugins = get(args.props, "spec", "plugins") or []
    if not any(p.get("isWALArchiver") for p in plugins) and not get(args.props, "spec", "backup"):
        report(f"PostgreSQL cluster {args.name} has no backups (WAL archiving) configured", None)


postgres_ha = ResourceValidationPolicy(
    name="postgres-ha",
    description="In prod PostgreSQL runs at least 3 instances and archives WAL to backups.",
    validate=_postgres_ha,
    config_schema=ENVIRONMENT_SCHEMA,
)


def _mesh_mtls_strict(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "kubernetes:kuma.io/v1alpha1:Mesh" or environment(args) != "prod":
        return
    mtls = get(args.props, "spec", "mtls") or {}
    enabled = mtls.get("enabledBackend")
    backend = next((b for b in mtls.get("backends") or [] if b.get("name") == enabled), None)
    if backend is None or backend.get("mode", "STRICT") != "STRICT":
        report(f"Mesh {args.name}: prod requires mTLS in STRICT mode", None)


mesh_mtls_strict = ResourceValidationPolicy(
    name="mesh-mtls-strict",
    description="In prod the service mesh enforces mTLS in STRICT mode.",
    validate=_mesh_mtls_strict,
    config_schema=ENVIRONMENT_SCHEMA,
)


def _elasticsearch_nodes(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch" or environment(args) != "prod":
        return
    nodes = sum(int(n.get("count", 0)) for n in get(args.props, "spec", "nodeSets") or [])
    if nodes < 3:
        report(f"Elasticsearch {args.name} has {nodes} node(s); prod requires at least 3", None)


elasticsearch_nodes = ResourceValidationPolicy(
    name="elasticsearch-nodes",
    description="In prod Elasticsearch runs at least 3 nodes.",
    validate=_elasticsearch_nodes,
    config_schema=ENVIRONMENT_SCHEMA,
)


def _helm_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "kubernetes:helm.sh/v3:Release":
        return
    version = str(args.props.get("version") or "")
    if not EXACT_VERSION.match(version):
        report(
            f"Helm release {args.name} ({args.props.get('chart')}) is not pinned to an exact version: {version!r}", None
        )


helm_pinned = ResourceValidationPolicy(
    name="helm-pinned",
    description="Helm releases are pinned to exact chart versions.",
    validate=_helm_pinned,
)


KONG_PLUGIN_TYPES = {
    "kubernetes:configuration.konghq.com/v1:KongPlugin",
    "kubernetes:configuration.konghq.com/v1:KongClusterPlugin",
}


def _opa_fail_closed(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in KONG_PLUGIN_TYPES or args.props.get("plugin") != "opa-authz":
        return
    if environment(args) == "prod" and get(args.props, "config", "fail_open") is not False:
        report(f"KongPlugin {args.name}: prod requires opa-authz to fail closed (config.fail_open: false)", None)


opa_fail_closed = ResourceValidationPolicy(
    name="opa-fail-closed",
    description="In prod a request whose policy question OPA cannot answer is refused (503), never let through.",
    validate=_opa_fail_closed,
    config_schema=ENVIRONMENT_SCHEMA,
)


POLICIES = [
    container_resources,
    pinned_images,
    pod_security,
    no_literal_secrets,
    gateway_hpa_range,
    kong_tls13,
    load_balancers,
    postgres_ha,
    mesh_mtls_strict,
    elasticsearch_nodes,
    helm_pinned,
    opa_fail_closed,
    pdb_for_replicated_workloads,
    custom_resources_after_their_crds,
    stateful_protected,
]
DEFAULT_ENFORCEMENT = EnforcementLevel.MANDATORY
