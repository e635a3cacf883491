"""ServiceMesh: Kuma (Envoy data plane) with builtin-CA mTLS and deny-by-default traffic.

The control plane is a pinned Helm release (native sidecars, Kuma CNI so injected namespaces can
keep Pod Security `restricted`, mesh creation left to us). The `Mesh` is ours; with mTLS on and
no allow-all permission created, traffic is denied unless a MeshTrafficPermission allows it.
Permissions are derived from the API catalogue: Kong to each routed backend and AI upstream,
backends to the backends they call, monitoring to the backends it scrapes. Mesh-wide retries,
timeouts and circuit breakers, with per-service overrides; tracing and JSON access logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.k8s import HelmChart, app_labels, child, custom_resource, helm_release, meta
from components.models.mesh import CniConfig
from components.namespaces import NamespaceSpec, namespace_labels

KUMA_API = "kuma.io/v1alpha1"
MESH_NAME = "default"
NAMESPACE_TAG = "k8s.kuma.io/namespace"


@dataclass(frozen=True)
class Workload:
    """Data planes to select: pod labels in a namespace, or a Kuma service tag."""

    name: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    service_tag: str | None = None  # kuma.io/service, e.g. gpt-large_ai-services_svc_8080

    def target_ref(self) -> dict[str, Any]:
        tags = dict(self.labels)
        if self.namespace:
            tags[NAMESPACE_TAG] = self.namespace
        if self.service_tag:
            tags["kuma.io/service"] = self.service_tag
        return {"kind": "MeshSubset", "tags": tags}


@dataclass(frozen=True)
class Permission:
    """`sources` may call `target`."""

    target: Workload
    sources: list[Workload]


@dataclass(frozen=True)
class Resilience:
    retry: Mapping[str, Any]
    timeout: Mapping[str, Any]
    circuit_breaker: Mapping[str, Any]


@dataclass(frozen=True)
class ServiceMeshArgs:
    namespace: str
    release: HelmChart | None
    mtls_mode: str
    certificate_rotation: str
    ca_expiration: str
    permissions: list[Permission]
    defaults: Resilience
    overrides: list[tuple[Workload, Resilience]] = field(default_factory=list)
    tracing_sampling_percent: float = 10.0
    tracing_endpoint: str = "otel-collector.observability.svc:4317"  # OTLP/gRPC host:port
    access_log: bool = True
    rate_limit: Mapping[str, Any] | None = None  # {"requests": n, "interval": "1s"}
    mesh_name: str = MESH_NAME
    cni: CniConfig = field(default_factory=CniConfig)


def kuma_values(release: HelmChart, cni: CniConfig) -> dict[str, Any]:
    """The control plane (replicated, with a PodDisruptionBudget), native sidecars, and the CNI
    plugin chained into the cluster's CNI so application pods need no NET_ADMIN init container."""
    return {
        "controlPlane": {
            "mode": "zone",
            "replicas": release.replicas or 1,
            "resources": release.resources_dict,
            "podDisruptionBudget": {"enabled": release.highly_available, "maxUnavailable": 1},
            "defaults": {"skipMeshCreation": True},  # the Mesh is ours
            "envVars": {"KUMA_DEFAULTS_CREATE_MESH_ROUTING_RESOURCES": "false"},  # no allow-all
        },
        "experimental": {"sidecarContainers": True},  # native sidecars: Jobs complete
        "cni": {
            "enabled": True,
            "chained": cni.chained,
            "netDir": cni.net_dir,
            "binDir": cni.bin_dir,
            # Empty: the installer chains into the first configuration it finds in netDir.
            "confName": cni.conf_name or "",
        },
    }


def retry_policy(retry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "http": {
            "numRetries": retry["num_retries"],
            "perTryTimeout": retry["per_try_timeout"],
            "backOff": {"baseInterval": retry["base_interval"], "maxInterval": retry["max_interval"]},
            "retryOn": list(retry["retry_on"]),
        }
    }


def timeout_policy(timeout: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "connectionTimeout": timeout["connection_timeout"],
        "idleTimeout": timeout["idle_timeout"],
        "http": {"requestTimeout": timeout["request_timeout"]},
    }


def circuit_breaker_policy(breaker: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "connectionLimits": {
            "maxConnections": breaker["max_connections"],
            "maxPendingRequests": breaker["max_pending_requests"],
            "maxRequests": breaker["max_requests"],
        },
        "outlierDetection": {
            "disabled": False,
            "interval": breaker["interval"],
            "baseEjectionTime": breaker["base_ejection_time"],
            "maxEjectionPercent": breaker["max_ejection_percent"],
            "detectors": {"totalFailures": {"consecutive": breaker["consecutive_failures"]}},
        },
    }


ACCESS_LOG_FIELDS = [
    ("start_time", "%START_TIME%"),
    ("source", "%KUMA_SOURCE_SERVICE%"),
    ("destination", "%KUMA_DESTINATION_SERVICE%"),
    ("method", "%REQ(:METHOD)%"),
    ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
    ("status", "%RESPONSE_CODE%"),
    ("duration_ms", "%DURATION%"),
    ("bytes_sent", "%BYTES_SENT%"),
    ("request_id", "%REQ(X-REQUEST-ID)%"),
    ("correlation_id", "%REQ(X-CORRELATION-ID)%"),
    ("trace_id", "%REQ(TRACEPARENT)%"),
]


def allow_from(sources: list[Workload]) -> list[dict[str, Any]]:
    return [{"targetRef": s.target_ref(), "default": {"action": "Allow"}} for s in sources]


def joined(first: pulumi.Input[list[Any]], second: pulumi.Input[list[Any]]) -> pulumi.Output[list[Any]]:
    """Two lists, either known only later, one after the other."""
    return pulumi.Output.all(first, second).apply(lambda both: [*both[0], *both[1]])


def traffic_permission(
    resource_name: str,
    permission: Permission,
    namespace: pulumi.Input[str],
    labels: Mapping[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
    more_sources: pulumi.Input[list[dict[str, Any]]] | None = None,
) -> pulumi.Resource:
    """`allow-<target>`: the permission's sources (and `more_sources`, `from` entries known later)
    may call its target. In the mesh's system namespace, so it applies mesh-wide."""
    sources: pulumi.Input[list[dict[str, Any]]] = allow_from(permission.sources)
    if more_sources is not None:
        sources = joined(sources, more_sources)
    return custom_resource(
        resource_name,
        KUMA_API,
        "MeshTrafficPermission",
        meta(f"allow-{permission.target.name}", namespace, labels),
        {"targetRef": permission.target.target_ref(), "from": sources},
        opts,
    )


@dataclass(frozen=True)
class MeshPermissionsArgs:
    """A team catalogue's permissions, in a mesh the platform stack owns."""

    permissions: list[Permission]  # among the catalogue's own workloads
    gateway_sources: pulumi.Input[list[dict[str, Any]]]  # `from` entries every target allows (Kong)
    monitoring_sources: pulumi.Input[list[dict[str, Any]]]  # and every backend (monitoring, if it scrapes)
    namespace: pulumi.Input[str]  # the mesh's system namespace
    mesh_name: pulumi.Input[str]
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class MeshPermissions(pulumi.ComponentResource):
    """MeshTrafficPermissions of a catalogue stack (the platform's own are in ServiceMesh)."""

    def __init__(self, name: str, args: MeshPermissionsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:mesh:MeshPermissions", name, None, opts)
        labels = {**app_labels("service-mesh", "mesh"), "kuma.io/mesh": args.mesh_name}
        backend_sources = joined(args.gateway_sources, args.monitoring_sources)
        for permission in args.permissions:
            is_upstream = permission.target.service_tag is not None  # an AI upstream: Kong only
            traffic_permission(
                f"{name}-allow-{permission.target.name}",
                permission,
                args.namespace,
                labels,
                child(self, args.depends_on),
                more_sources=args.gateway_sources if is_upstream else backend_sources,
            )
        self.register_outputs({"permissions": [p.target.name for p in args.permissions]})


class ServiceMesh(pulumi.ComponentResource):
    def __init__(self, name: str, args: ServiceMeshArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:mesh:ServiceMesh", name, None, opts)
        self._name, self._args = name, args
        labels = {**app_labels("service-mesh", "mesh"), "kuma.io/mesh": args.mesh_name}
        # The control plane's namespace is not itself in the mesh.
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=meta(args.namespace, labels=namespace_labels(NamespaceSpec(args.namespace, "baseline"))),
            opts=child(self),
        )
        owners: list[pulumi.Resource] = [namespace]
        if args.release:
            values = kuma_values(args.release, args.cni)
            owners.append(helm_release(f"{name}-release", "kuma", args.release, values, child(self, [namespace])))
        opts_after_release = child(self, owners)

        builtin = {
            "name": "ca-1",
            "type": "builtin",
            "mode": args.mtls_mode,
            "dpCert": {"rotation": {"expiration": args.certificate_rotation}},
            "conf": {"caCert": {"RSAbits": 2048, "expiration": args.ca_expiration}},
        }
        self.mesh = custom_resource(
            f"{name}-mesh",
            KUMA_API,
            "Mesh",
            meta(args.mesh_name, labels=labels),
            {"mtls": {"enabledBackend": "ca-1", "backends": [builtin]}},
            opts_after_release,
        )
        policy_opts = child(self, [*owners, self.mesh])

        def policy(resource: str, kind: str, spec: Mapping[str, Any]) -> pulumi.Resource:
            return custom_resource(
                f"{name}-{resource}", KUMA_API, kind, meta(resource, args.namespace, labels), spec, policy_opts
            )

        mesh_ref = {"kind": "Mesh"}
        for permission in args.permissions:
            traffic_permission(
                f"{name}-allow-{permission.target.name}", permission, args.namespace, labels, policy_opts
            )
        targets = [(mesh_ref, args.defaults, "defaults"), *((w.target_ref(), r, w.name) for w, r in args.overrides)]
        for target_ref, resilience, suffix in targets:
            policy(
                f"retry-{suffix}",
                "MeshRetry",
                {
                    "targetRef": mesh_ref,
                    "to": [{"targetRef": target_ref, "default": retry_policy(resilience.retry)}],
                },
            )
            policy(
                f"timeout-{suffix}",
                "MeshTimeout",
                {
                    "targetRef": mesh_ref,
                    "to": [{"targetRef": target_ref, "default": timeout_policy(resilience.timeout)}],
                },
            )
            policy(
                f"circuit-breaker-{suffix}",
                "MeshCircuitBreaker",
                {
                    "targetRef": mesh_ref,
                    "to": [{"targetRef": target_ref, "default": circuit_breaker_policy(resilience.circuit_breaker)}],
                },
            )
        policy(
            "tracing",
            "MeshTrace",
            {
                "targetRef": mesh_ref,
                "default": {
                    "backends": [{"type": "OpenTelemetry", "openTelemetry": {"endpoint": args.tracing_endpoint}}],
                    "sampling": {"overall": args.tracing_sampling_percent},
                },
            },
        )
        if args.access_log:
            policy(
                "access-log",
                "MeshAccessLog",
                {
                    "targetRef": mesh_ref,
                    "from": [
                        {
                            "targetRef": mesh_ref,
                            "default": {
                                "backends": [
                                    {
                                        "type": "File",
                                        "file": {
                                            "path": "/dev/stdout",
                                            "format": {
                                                "type": "Json",
                                                "json": [{"key": k, "value": v} for k, v in ACCESS_LOG_FIELDS],
                                            },
                                        },
                                    }
                                ]
                            },
                        }
                    ],
                },
            )
        if args.rate_limit:
            policy(
                "rate-limit",
                "MeshRateLimit",
                {
                    "targetRef": mesh_ref,
                    "from": [
                        {
                            "targetRef": mesh_ref,
                            "default": {
                                "local": {
                                    "http": {
                                        "requestRate": {
                                            "num": args.rate_limit["requests"],
                                            "interval": args.rate_limit["interval"],
                                        },
                                        "onRateLimit": {"status": 429},
                                    }
                                }
                            },
                        }
                    ],
                },
            )
        self.register_outputs({"mesh": args.mesh_name})
