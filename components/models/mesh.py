"""The Kuma service mesh: release, CNI, mTLS, resilience defaults and overrides, tracing, logs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.models.base import (
    ExactVersion,
    HelmReleaseConfig,
    K8sName,
    Repository,
    ResourcesConfig,
    StrictModel,
    resources,
)


class KumaRelease(HelmReleaseConfig):
    """The Kuma control plane (and its CNI DaemonSet)."""

    chart: str = "kuma"
    version: ExactVersion = "2.14.3"
    repository: Repository = "https://kumahq.github.io/charts"
    namespace: K8sName = "kuma-system"
    resources: ResourcesConfig = resources("500m", "512Mi", "2", "1Gi")


DURATION = r"^[0-9]+(ms|s|m|h)$"


RetryOn = Literal["5xx", "GatewayError", "Reset", "ConnectFailure", "RefusedStream", "Retriable4xx"]


def _default_retry_on() -> list[RetryOn]:
    return ["GatewayError", "Reset", "ConnectFailure", "RefusedStream"]


class RetryConfig(StrictModel):
    """MeshRetry for HTTP."""

    num_retries: int = Field(default=2, ge=0, le=10)
    per_try_timeout: str = Field(default="5s", pattern=DURATION)
    base_interval: str = Field(default="25ms", pattern=DURATION)
    max_interval: str = Field(default="250ms", pattern=DURATION)
    retry_on: list[RetryOn] = Field(default_factory=_default_retry_on)


class TimeoutConfig(StrictModel):
    """MeshTimeout."""

    connection_timeout: str = Field(default="5s", pattern=DURATION)
    idle_timeout: str = Field(default="1h", pattern=DURATION)
    request_timeout: str = Field(default="60s", pattern=DURATION)


class CircuitBreakerConfig(StrictModel):
    """MeshCircuitBreaker: connection limits and outlier detection (ejection of failing endpoints)."""

    max_connections: int = Field(default=1024, ge=1)
    max_pending_requests: int = Field(default=1024, ge=1)
    max_requests: int = Field(default=2048, ge=1)
    consecutive_failures: int = Field(default=5, ge=1, description="failures before an endpoint is ejected")
    interval: str = Field(default="10s", pattern=DURATION)
    base_ejection_time: str = Field(default="30s", pattern=DURATION)
    max_ejection_percent: int = Field(default=50, ge=1, le=100)


class ServiceOverrideConfig(StrictModel):
    """Resilience settings for one API's backend, instead of the mesh defaults."""

    api: K8sName
    retry: RetryConfig | None = None
    timeout: TimeoutConfig | None = None
    circuit_breaker: CircuitBreakerConfig | None = None


class MeshRateLimitConfig(StrictModel):
    """A coarse per-client request rate inside the mesh (each sidecar counts locally)."""

    requests: int = Field(ge=1)
    interval: str = Field(default="1s", pattern=DURATION)


class CniConfig(StrictModel):
    """Kuma's CNI plugin, which redirects pod traffic to the sidecar without privileged init containers.

    Chained into the cluster's own CNI configuration, in the standard directories most CNIs use
    (Calico, Cilium, Flannel, kindnet, AWS VPC CNI, Azure CNI). GKE keeps binaries in
    /home/kubernetes/bin; OpenShift with Multus uses chained: false and the Multus directories.
    """

    chained: bool = Field(default=True, description="add Kuma to the cluster CNI's plugin chain")
    net_dir: str = Field(default="/etc/cni/net.d", pattern=r"^/", description="the nodes' CNI configuration directory")
    bin_dir: str = Field(default="/opt/cni/bin", pattern=r"^/", description="the nodes' CNI binary directory")
    conf_name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]+\.conf(list)?$",
        description="the cluster CNI's configuration file to chain into; unset: the first one in netDir",
    )


class MeshConfig(StrictModel):
    """The Kuma service mesh (Envoy data plane) with builtin-CA mTLS."""

    release: KumaRelease = KumaRelease()
    cni: CniConfig = CniConfig()
    mtls_mode: Literal["STRICT", "PERMISSIVE"] = "STRICT"
    certificate_rotation: str = Field(default="24h", pattern=DURATION, description="data plane certificate lifetime")
    ca_expiration: str = Field(default="87600h", pattern=DURATION)
    tracing_sampling_percent: float = Field(default=10.0, description="share of requests traced (0-100)")
    tracing_endpoint: str | None = Field(
        default=None, description="OTLP/gRPC collector of the sidecars' spans; unset: the platform's collector"
    )
    access_log: bool = Field(default=True, description="JSON access logs on stdout")
    monitoring_namespace: K8sName | None = Field(
        default="monitoring", description="namespace of Prometheus, allowed to scrape the routed backends"
    )
    retry: RetryConfig = RetryConfig()
    timeout: TimeoutConfig = TimeoutConfig()
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()
    overrides: list[ServiceOverrideConfig] = Field(default_factory=list)
    rate_limit: MeshRateLimitConfig | None = None

    @model_validator(mode="after")
    def _sampling(self) -> MeshConfig:
        if not 0 <= self.tracing_sampling_percent <= 100:
            raise ValueError(f"tracingSamplingPercent must be between 0 and 100, got {self.tracing_sampling_percent}")
        return self
