"""Metrics, logs and traces: ECK and Elasticsearch, Jaeger and the collector, Fluent Bit, monitors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.models.base import (
    ExactVersion,
    HelmReleaseConfig,
    Image,
    K8sName,
    Quantity,
    Repository,
    ResourcesConfig,
    StrictModel,
    quantity_value,
    resources,
)


class EckRelease(HelmReleaseConfig):
    """The Elastic Cloud on Kubernetes operator."""

    chart: str = "eck-operator"
    version: ExactVersion = "3.5.0"
    repository: Repository = "https://helm.elastic.co"
    namespace: K8sName = "elastic-system"
    resources: ResourcesConfig = resources("100m", "150Mi", "1", "1Gi")


class JaegerRelease(HelmReleaseConfig):
    """Jaeger v2 (collector, storage writer and query in one binary)."""

    chart: str = "jaeger"
    version: ExactVersion = "4.11.1"
    repository: Repository = "https://jaegertracing.github.io/helm-charts"
    namespace: K8sName = "observability"
    resources: ResourcesConfig = resources("200m", "512Mi", "1", "1Gi")


class CollectorRelease(HelmReleaseConfig):
    """The OpenTelemetry Collector in front of Jaeger."""

    chart: str = "opentelemetry-collector"
    version: ExactVersion = "0.170.0"
    repository: Repository = "https://open-telemetry.github.io/opentelemetry-helm-charts"
    namespace: K8sName = "observability"
    resources: ResourcesConfig = resources("200m", "256Mi", "1", "512Mi")


class FluentBitRelease(HelmReleaseConfig):
    """Fluent Bit, one pod per node (a DaemonSet: `replicas` does not apply)."""

    chart: str = "fluent-bit"
    version: ExactVersion = "0.58.1"
    repository: Repository = "https://fluent.github.io/helm-charts"
    namespace: K8sName = "logging"
    replicas: int | None = Field(default=None, description="not used: a DaemonSet runs one pod per node")
    resources: ResourcesConfig = resources("100m", "128Mi", "500m", "256Mi")

    @model_validator(mode="after")
    def _no_replicas(self) -> FluentBitRelease:
        if self.replicas is not None:
            raise ValueError("replicas does not apply to Fluent Bit: it runs one pod per node")
        return self


class ElasticsearchConfig(StrictModel):
    """Elasticsearch (ECK) for logs and traces, with Kibana."""

    operator: EckRelease = EckRelease()
    name: K8sName = "platform-logs"
    version: str = Field(default="9.3.0", pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")
    nodes: int = Field(default=3, ge=1, le=50, description="master-eligible data nodes (1, or 3 and more)")
    dedicated_masters: bool = Field(default=False, description="3 dedicated masters beside `nodes` data nodes")
    storage_size: Quantity = "100Gi"
    storage_class: str | None = None
    resources: ResourcesConfig = resources("1", "4Gi", "2", "4Gi")
    heap: str = Field(default="2g", pattern=r"^[0-9]+[mg]$", description="JVM heap (at most half the memory limit)")
    log_retention_days: int = Field(default=14, ge=1, le=3650)
    trace_retention_days: int = Field(default=7, ge=1, le=3650)
    kibana: bool = True

    @model_validator(mode="after")
    def _quorum_and_heap(self) -> ElasticsearchConfig:
        if self.nodes == 2 and not self.dedicated_masters:
            raise ValueError("nodes: 2 master-eligible nodes cannot form a safe quorum; use 1 or at least 3")
        heap_bytes = int(self.heap[:-1]) * (2**30 if self.heap.endswith("g") else 2**20)
        if heap_bytes > quantity_value(self.resources.limits.memory) / 2:
            raise ValueError(f"heap {self.heap} exceeds half of the memory limit {self.resources.limits.memory}")
        return self


class TracingConfig(StrictModel):
    """Jaeger v2 behind an OpenTelemetry Collector that receives Kong's OTLP/HTTP spans."""

    jaeger: JaegerRelease = JaegerRelease()
    collector: CollectorRelease = CollectorRelease()
    collector_image: Image = "otel/opentelemetry-collector-contrib:0.158.0"
    storage: Literal["elasticsearch", "memory"] = Field(default="elasticsearch", description="memory: dev only")
    sampling_rate: float = Field(default=0.1, description="share of requests Kong traces (0-1)")

    @model_validator(mode="after")
    def _rate(self) -> TracingConfig:
        if not 0 <= self.sampling_rate <= 1:
            raise ValueError(f"samplingRate must be between 0 and 1, got {self.sampling_rate}")
        if self.storage == "memory" and self.jaeger.replicas != 1:
            raise ValueError(
                f"jaeger.replicas must be 1 with storage memory (got {self.jaeger.replicas}): each replica would "
                "hold a different part of the traces"
            )
        return self


class LoggingConfig(StrictModel):
    """Fluent Bit shipping container logs (Kong's JSON access log among them) to Elasticsearch."""

    release: FluentBitRelease = FluentBitRelease()


class MonitoringConfig(StrictModel):
    """Prometheus Operator monitors and the SLO alert rules."""

    prometheus_labels: dict[str, str] = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack"},
        description="labels the cluster's Prometheus selects monitors and rules by",
    )
    latency_p95_ms: int = Field(default=50, ge=1, description="objective for Kong's added latency (P95)")
    availability_percent: float = Field(default=99.95, gt=90, lt=100, description="availability SLO")
    certificate_expiry_days: int = Field(default=14, ge=1)


class ObservabilityConfig(StrictModel):
    """Metrics, logs and traces."""

    elasticsearch: ElasticsearchConfig = ElasticsearchConfig()
    tracing: TracingConfig = TracingConfig()
    logging: LoggingConfig = LoggingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
