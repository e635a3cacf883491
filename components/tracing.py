"""Tracing: Jaeger v2 (pinned chart) behind an OpenTelemetry Collector, and Kong's tracing.

Kong sends OTLP/HTTP spans (W3C trace context; 10 % of requests by default) to the collector's
Service, and the mesh's sidecars send OTLP/gRPC there too. The collector batches them and exports
OTLP/gRPC to the Service the Jaeger chart creates, which is named after the release. Jaeger runs
with our own configuration (the chart's `userconfig`): in prod it stores spans in the platform
Elasticsearch over TLS verified against the platform CA, as the least-privilege trace writer,
with several replicas behind a PodDisruptionBudget; in dev it keeps them in memory (one replica).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.k8s import HelmChart, child, helm_release, release_pdb

COLLECTOR = "otel-collector"  # the collector chart's fullnameOverride: its Deployment and Service
JAEGER = "jaeger"  # the release name, which the Jaeger chart gives its Deployment and Service
JAEGER_PODS = {
    "app.kubernetes.io/name": "jaeger",
    "app.kubernetes.io/instance": JAEGER,
    "app.kubernetes.io/component": "all-in-one",
}
OTLP_GRPC_PORT, OTLP_HTTP_PORT = 4317, 4318
QUERY_HTTP_PORT, QUERY_GRPC_PORT, HEALTH_PORT, METRICS_PORT = 16686, 16685, 13133, 8888
TRACE_STORE = "primary_store"
ES_CA_DIR, ES_CREDENTIALS_DIR = "/etc/jaeger/es-ca", "/etc/jaeger/es-credentials"
# The collector chart's ports besides OTLP: nothing sends to them, so they are not exposed.
UNUSED_PORTS = ["jaeger-compact", "jaeger-thrift", "jaeger-grpc", "zipkin"]
TRACE_HEADERS = ("x-request-id", "x-correlation-id")  # the request ids Kong's span carries


@dataclass(frozen=True)
class ElasticsearchStorage:
    url: str
    username: str
    credentials_secret: str  # key `password`, in the tracing namespace
    ca_secret: str  # key `ca.crt`: the CA that signed Elasticsearch's HTTP certificate


@dataclass(frozen=True)
class TracingArgs:
    namespace: str
    jaeger: HelmChart | None
    collector: HelmChart | None
    collector_image: str
    sampling_rate: float
    storage: ElasticsearchStorage | None = None  # None: in memory
    depends_on: list[pulumi.Resource] = field(default_factory=list)


ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - inside a pod: its own network namespace


def listen(port: int) -> str:
    return f"{ALL_INTERFACES}:{port}"


def otlp_receiver() -> dict[str, Any]:
    return {
        "otlp": {
            "protocols": {"grpc": {"endpoint": listen(OTLP_GRPC_PORT)}, "http": {"endpoint": listen(OTLP_HTTP_PORT)}}
        }
    }


def collector_config(jaeger_endpoint: str) -> dict[str, object]:
    """The collector's whole configuration (the chart's `alternateConfig`, not merged with its
    defaults, which add receivers and pipelines nothing here uses): OTLP in, traces to Jaeger."""
    pod_ip = "${env:MY_POD_IP}"  # set by the chart
    return {
        "extensions": {"health_check": {"endpoint": f"{pod_ip}:{HEALTH_PORT}"}},  # the chart's probes
        "receivers": otlp_receiver(),
        "processors": {
            "memory_limiter": {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20},
            "batch": {"send_batch_size": 1024, "timeout": "5s"},
        },
        # otlp_grpc: the exporter's name since collector 0.14x (`otlp` is a deprecated alias).
        "exporters": {"otlp_grpc": {"endpoint": jaeger_endpoint, "tls": {"insecure": True}}},
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "batch"],
                    "exporters": ["otlp_grpc"],
                }
            },
            "telemetry": {
                "metrics": {"readers": [{"pull": {"exporter": {"prometheus": {"host": pod_ip, "port": METRICS_PORT}}}}]}
            },
        },
    }


def collector_values(release: HelmChart, image: str, jaeger_endpoint: str) -> dict[str, object]:
    repository, _, version = image.partition("@") if "@" in image else image.rpartition(":")
    pinned = {"digest": version} if "@" in image else {"tag": version}
    return {
        "mode": "deployment",
        "replicaCount": release.replicas or 1,
        "image": {"repository": repository, **pinned},
        "fullnameOverride": COLLECTOR,
        "alternateConfig": collector_config(jaeger_endpoint),
        "ports": {port: {"enabled": False} for port in UNUSED_PORTS},
        "resources": release.resources_dict,
        "podDisruptionBudget": {"enabled": release.highly_available, "minAvailable": 1},
    }


def jaeger_storage_backend(storage: ElasticsearchStorage | None) -> dict[str, Any]:
    if storage is None:
        return {"memory": {"max_traces": 100000}}
    return {
        "elasticsearch": {
            "server_urls": [storage.url],
            "auth": {"basic": {"username": storage.username, "password_file": f"{ES_CREDENTIALS_DIR}/password"}},
            # Verified against the CA that signed the cluster's HTTP certificate (insecure is off).
            "tls": {"ca_file": f"{ES_CA_DIR}/ca.crt"},
        }
    }


def jaeger_config(storage: ElasticsearchStorage | None) -> dict[str, Any]:
    """Jaeger v2's own configuration: OTLP in, one trace store, the query service and health."""
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["jaeger_storage_exporter"]}
            },
            "telemetry": {
                "resource": {"service.name": "jaeger"},
                "metrics": {
                    "level": "detailed",
                    "readers": [{"pull": {"exporter": {"prometheus": {"host": ALL_INTERFACES, "port": METRICS_PORT}}}}],
                },
            },
        },
        "extensions": {
            "healthcheckv2": {"use_v2": True, "http": {"endpoint": listen(HEALTH_PORT)}},
            "jaeger_query": {
                "storage": {"traces": TRACE_STORE},
                "http": {"endpoint": listen(QUERY_HTTP_PORT)},
                "grpc": {"endpoint": listen(QUERY_GRPC_PORT)},
            },
            "jaeger_storage": {"backends": {TRACE_STORE: jaeger_storage_backend(storage)}},
        },
        "receivers": otlp_receiver(),
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": TRACE_STORE}},
    }


def jaeger_values(release: HelmChart, storage: ElasticsearchStorage | None) -> dict[str, object]:
    jaeger: dict[str, object] = {
        "replicas": release.replicas or 1,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "resources": release.resources_dict,
    }
    if storage is not None:
        jaeger["extraVolumes"] = [
            {
                "name": "es-ca",
                "secret": {"secretName": storage.ca_secret, "items": [{"key": "ca.crt", "path": "ca.crt"}]},
            },
            {
                "name": "es-credentials",
                "secret": {
                    "secretName": storage.credentials_secret,
                    "items": [{"key": "password", "path": "password"}],
                },
            },
        ]
        jaeger["extraVolumeMounts"] = [
            {"name": "es-ca", "mountPath": ES_CA_DIR, "readOnly": True},
            {"name": "es-credentials", "mountPath": ES_CREDENTIALS_DIR, "readOnly": True},
        ]
    return {"userconfig": jaeger_config(storage), "jaeger": jaeger}


def kong_tracing_env(sampling_rate: float) -> dict[str, str]:
    return {"KONG_TRACING_INSTRUMENTATIONS": "all", "KONG_TRACING_SAMPLING_RATE": str(sampling_rate)}


class Tracing(pulumi.ComponentResource):
    query_url: str
    otlp_http_endpoint: str
    otlp_grpc_endpoint: str
    kong_plugins: list[tuple[str, dict[str, Any]]]  # (plugin, config) of Kong's tracing

    def __init__(self, name: str, args: TracingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:observability:Tracing", name, None, opts)
        ns = args.namespace
        jaeger_service = f"{JAEGER}.{ns}.svc"
        owners: list[pulumi.Resource] = list(args.depends_on)
        if args.jaeger:
            jaeger = helm_release(
                f"{name}-jaeger",
                JAEGER,
                args.jaeger,
                jaeger_values(args.jaeger, args.storage),
                child(self, args.depends_on),
            )
            owners.append(jaeger)
            release_pdb(f"{name}-jaeger-pdb", args.jaeger, JAEGER_PODS, child(self, [jaeger]))
        if args.collector:
            values = collector_values(args.collector, args.collector_image, f"{jaeger_service}:{OTLP_GRPC_PORT}")
            owners.append(
                helm_release(
                    f"{name}-collector", COLLECTOR, args.collector, values, child(self, [*args.depends_on, *owners])
                )
            )
        self.otlp_http_endpoint = f"http://{COLLECTOR}.{ns}.svc:{OTLP_HTTP_PORT}/v1/traces"
        self.otlp_grpc_endpoint = f"{COLLECTOR}.{ns}.svc:{OTLP_GRPC_PORT}"
        self.query_url = f"http://{jaeger_service}:{QUERY_HTTP_PORT}"
        # Kong's global OpenTelemetry plugin, and trace-headers (ours) putting the request's ids on
        # its span: the KongApis component registers them with the other gateway-wide plugins,
        # after Kong's CRDs and admission webhook.
        self.kong_plugins = [
            (
                "opentelemetry",
                {
                    "traces_endpoint": self.otlp_http_endpoint,
                    "sampling_rate": args.sampling_rate,
                    "resource_attributes": {"service.name": "kong"},
                    # W3C trace context; keep whatever the client sent, and answer with the trace id.
                    "propagation": {
                        "extract": ["w3c", "b3", "jaeger"],
                        "inject": ["preserve", "w3c"],
                        "default_format": "w3c",
                    },
                    "http_response_header_for_traceid": "X-Trace-Id",
                },
            ),
            # X-Request-ID and X-Correlation-ID (set by the correlation-id and request-transformer
            # plugins) as http.request.header.* attributes: a request in the logs is found in Jaeger.
            ("trace-headers", {"headers": list(TRACE_HEADERS), "max_value_bytes": 128}),
        ]
