"""Kong Gateway: image, sizing, autoscaling, tuning, the proxy Service and the ingress controller."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.models.base import Image, K8sName, ResourcesConfig, StrictModel, resources


class AutoscalingConfig(StrictModel):
    """The gateway's HorizontalPodAutoscaler (autoscaling/v2)."""

    min_replicas: int = Field(default=3, ge=1, le=50)
    max_replicas: int = Field(default=50, ge=1, le=50)
    target_cpu_utilization: int = Field(default=70, ge=10, le=95, description="average CPU % of requests")
    scale_up_stabilization_seconds: int = Field(default=0, ge=0, le=3600)
    scale_down_stabilization_seconds: int = Field(default=300, ge=0, le=3600)

    @model_validator(mode="after")
    def _min_below_max(self) -> AutoscalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas ({self.min_replicas}) is above maxReplicas ({self.max_replicas})")
        return self


class ProxyServiceConfig(StrictModel):
    """The public proxy Service."""

    type: Literal["LoadBalancer", "NodePort", "ClusterIP"] = "LoadBalancer"
    annotations: dict[str, str] = Field(default_factory=dict, description="e.g. cloud load-balancer settings")
    external_traffic_policy: Literal["Local", "Cluster"] = Field(
        default="Local", description="Local keeps client source IPs for IP rate limits"
    )
    load_balancer_source_ranges: list[str] = Field(default_factory=list)


class AdmissionWebhookConfig(StrictModel):
    """The ingress controller's validating admission webhook: Kong checks plugin configurations,
    consumers and credentials when they are applied, so `pulumi up` refuses an invalid one."""

    enabled: bool = True
    failure_policy: Literal["Fail", "Ignore"] = Field(
        default="Fail",
        description="for Kong's own resources and credentials when the controller cannot answer: Fail refuses "
        "them (Ingresses and Services are always Ignore: they are cluster-wide and not only Kong's)",
    )


class KongControllerConfig(StrictModel):
    """The Kong Ingress Controller: its own leader-elected Deployment."""

    image: Image = "kong/kubernetes-ingress-controller:3.5.3"
    replicas: int = Field(default=2, ge=1, le=5)
    ingress_class: K8sName = "kong"
    resources: ResourcesConfig = resources("100m", "256Mi", "500m", "512Mi")
    install_crds: bool = Field(default=True, description="install Kong's CRDs from the pinned upstream file")
    crds_source: str = Field(
        default="https://raw.githubusercontent.com/Kong/charts/kong-3.4.1/charts/kong/crds/custom-resource-definitions.yaml",
        pattern=r"^(https://|/|\./)",
        description="Kong's CRDs: the pinned upstream file (https://), or a local copy (air-gapped clusters; a path "
        "relative to the project directory starts with ./)",
    )
    admission_webhook: AdmissionWebhookConfig = AdmissionWebhookConfig()


class KongConfig(StrictModel):
    """Kong Gateway in PostgreSQL mode, written as explicit Kubernetes resources."""

    image: Image = "kong:3.9.1"
    autoscaling: AutoscalingConfig = AutoscalingConfig()
    resources: ResourcesConfig = resources("1", "2Gi", "2", "4Gi")
    nginx_worker_processes: int = Field(default=2, ge=1, le=16, description="match the CPU limit")
    pg_pool_size: int = Field(default=4, ge=1, le=256, description="connections per nginx worker to -rw")
    pg_ro_pool_size: int = Field(default=4, ge=1, le=256, description="connections per nginx worker to -ro")
    mem_cache_size: str = Field(default="1024m", pattern=r"^[0-9]+[km]$")
    max_unavailable: int = Field(default=1, ge=1, description="PodDisruptionBudget maxUnavailable")
    readiness_failover_tolerance_seconds: int = Field(
        default=90, ge=10, le=600, description="how long readiness tolerates a database failover"
    )
    termination_grace_seconds: int = Field(default=60, ge=20, le=600)
    proxy: ProxyServiceConfig = ProxyServiceConfig()
    controller: KongControllerConfig = KongControllerConfig()

    @property
    def version(self) -> str:
        return self.image.rsplit(":", 1)[-1]
