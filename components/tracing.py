"""Tracing: Jaeger v2 (pinned chart) behind an OpenTelemetry Collector, and Kong's tracing.

Kong sends OTLP/HTTP spans (W3C trace context; 10 % of requests by default) to the collector,
which batches them and exports OTLP/gRPC to Jaeger; Jaeger stores them in Elasticsearch (prod)
or in memory (dev). The mesh's MeshTrace sends the sidecars' spans to the same collector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.k8s import HelmChart, app_labels, child, helm_release, meta
from components.kong_resources import kong_plugin

COLLECTOR = "otel-collector"
JAEGER = "jaeger"


@dataclass(frozen=True)
class ElasticsearchStorage:
    url: str
    credentials_secret: str  # username, password
    ca_secret: str  # ca.crt


@dataclass(frozen=True)
class TracingArgs:
    namespace: str
    jaeger: HelmChart | None
    collector: HelmChart | None
    collector_image: str
    sampling_rate: float
    ingress_class: str
    storage: ElasticsearchStorage | None = None  # None: in memory
    depends_on: list[pulumi.Resource] = field(default_factory=list)


def collector_config(jaeger_endpoint: str) -> dict[str, object]:
    return {
        "receivers": {
            "otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}, "http": {"endpoint": "0.0.0.0:4318"}}}
        },
        "processors": {
            "memory_limiter": {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20},
            "batch": {"send_batch_size": 1024, "timeout": "5s"},
        },
        "exporters": {"otlp": {"endpoint": jaeger_endpoint, "tls": {"insecure": True}}},
        "service": {
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"], "exporters": ["otlp"]}
            }
        },
    }


def jaeger_values(storage: ElasticsearchStorage | None) -> dict[str, object]:
    if storage is None:
        return {"storage": {"type": "memory"}, "allInOne": {"enabled": True}}
    return {
        "allInOne": {"enabled": False},
        "storage": {
            "type": "elasticsearch",
            "elasticsearch": {
                "host": storage.url.removeprefix("https://").split(":")[0],
                "port": 9200,
                "scheme": "https",
                "existingSecret": storage.credentials_secret,
                "existingSecretKey": "password",
                "usernameFromSecret": True,
                "tls": {"enabled": True, "secretName": storage.ca_secret, "ca": "/tls/ca.crt"},
            },
        },
        "collector": {"replicaCount": 2},
        "query": {"replicaCount": 2},
    }


def kong_tracing_env(sampling_rate: float) -> dict[str, str]:
    return {"KONG_TRACING_INSTRUMENTATIONS": "all", "KONG_TRACING_SAMPLING_RATE": str(sampling_rate)}


class Tracing(pulumi.ComponentResource):
    query_url: str
    otlp_http_endpoint: str

    def __init__(self, name: str, args: TracingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:observability:Tracing", name, None, opts)
        ns = args.namespace
        owners: list[pulumi.Resource] = list(args.depends_on)
        if args.jaeger:
            owners.append(
                helm_release(
                    f"{name}-jaeger", JAEGER, args.jaeger, jaeger_values(args.storage), child(self, args.depends_on)
                )
            )
        if args.collector:
            values = {
                "mode": "deployment",
                "replicaCount": 2,
                "image": {
                    "repository": args.collector_image.rsplit(":", 1)[0],
                    "tag": args.collector_image.rsplit(":", 1)[1],
                },
                "fullnameOverride": COLLECTOR,
                "config": collector_config(f"{JAEGER}-collector.{ns}.svc:4317"),
                "resources": {
                    "requests": {"cpu": "200m", "memory": "256Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"},
                },
            }
            owners.append(
                helm_release(
                    f"{name}-collector", COLLECTOR, args.collector, values, child(self, [*args.depends_on, *owners])
                )
            )
        self.otlp_http_endpoint = f"http://{COLLECTOR}.{ns}.svc:4318/v1/traces"
        self.query_url = f"http://{JAEGER}-query.{ns}.svc:16686"
        labels = {**app_labels("api-catalogue", "tracing"), "global": "true"}
        kong_plugin(
            f"{name}-kong-opentelemetry",
            meta(
                "global-opentelemetry", labels=labels, annotations={"kubernetes.io/ingress.class": args.ingress_class}
            ),
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
            child(self, owners),
            cluster_wide=True,
        )
        self.register_outputs({"query_url": self.query_url})
