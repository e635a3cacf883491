"""Typed stack configuration.

Everything that differs between environments is read from the `api-platform:platform` object
in `Pulumi.<stack>.yaml` and validated here before any resource is registered. Keys are
camelCase in YAML (the Pulumi convention) and snake_case in Python. Secrets never live in this
object: they are separate secure keys (see `stacks.secrets`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from components.pins import PIN, ca_certificate, certificate_pin

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Kubernetes label keys: optional DNS-subdomain prefix, then a name of at most 63 characters.
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"  # optional prefix/
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


def name_hint(name: str, known: Collection[str], shown: int = 8) -> str:
    """A short pointer to what `name` may have meant: the closest known names, else a sample."""
    close = difflib.get_close_matches(name, known, n=3)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    ordered = sorted(known)
    more = f", and {len(ordered) - shown} more" if len(ordered) > shown else ""
    return "known: " + (", ".join(ordered[:shown]) or "none") + more


def _dns_label(value: str) -> str:
    if len(value) > 63 or not DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid Kubernetes name (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


def _labels(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if not LABEL_KEY.match(key):
            raise ValueError(f"label key {key!r} is not a valid Kubernetes label key")
        if not LABEL_VALUE.match(val):
            raise ValueError(f"label value {val!r} (key {key!r}) is not a valid Kubernetes label value")
    return value


K8sName = Annotated[str, AfterValidator(_dns_label)]
Labels = Annotated[dict[str, str], AfterValidator(_labels)]


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
    )


class ClusterConfig(StrictModel):
    """How the stack reaches its cluster: one explicit Kubernetes provider per stack."""

    context: str | None = Field(
        default=None, description="kubeconfig context to deploy to; unset uses the current context"
    )
    kubeconfig_path: str | None = Field(
        default=None, description="path of the kubeconfig file; unset uses $KUBECONFIG or ~/.kube/config"
    )
    skip_await: bool = Field(
        default=False,
        description="annotate every object with pulumi.com/skipAwait (only for API servers without a kubelet, "
        "as in the end-to-end test)",
    )
    deletion_propagation: Literal["foreground", "background", "orphan"] | None = Field(
        default=None, description="pulumi.com/deletionPropagationPolicy for every object; unset keeps the provider's"
    )


PodSecurityLevel = Literal["privileged", "baseline", "restricted"]


class NamespaceConfig(StrictModel):
    """One platform namespace."""

    name: K8sName
    pod_security: PodSecurityLevel = Field(
        default="restricted", description="Pod Security Admission level enforced in the namespace"
    )
    mesh_injection: bool = Field(default=False, description="inject the Kuma sidecar into the namespace's pods")


class NamespacesConfig(StrictModel):
    """The namespaces the platform owns, by role."""

    gateway: NamespaceConfig = Field(
        default=NamespaceConfig(name="kong", mesh_injection=True), description="Kong Gateway and its controller"
    )
    database: NamespaceConfig = Field(
        default=NamespaceConfig(name="databases"), description="PostgreSQL clusters (outside the mesh)"
    )
    observability: NamespaceConfig = Field(
        default=NamespaceConfig(name="observability", pod_security="baseline"),
        description="Elasticsearch, Kibana, Jaeger, the OpenTelemetry Collector, alert rules",
    )
    logging: NamespaceConfig = Field(
        default=NamespaceConfig(name="logging", pod_security="privileged"),
        description="the log shipper (reads node log files through hostPath)",
    )
    applications: list[NamespaceConfig] = Field(
        default_factory=lambda: [NamespaceConfig(name="ai-services", mesh_injection=True)],
        description="namespaces of the backend services that Kong routes to",
    )

    def all(self) -> list[NamespaceConfig]:
        return [self.gateway, self.database, self.observability, self.logging, *self.applications]

    @model_validator(mode="after")
    def _unique_names(self) -> NamespacesConfig:
        names = [ns.name for ns in self.all()]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"namespace names must be unique, repeated: {', '.join(duplicates)}")
        return self


# ---- shared building blocks ------------------------------------------------------------------

QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_QUANTITY_FACTORS = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


def quantity_value(text: str) -> float:
    """The numeric value of a Kubernetes quantity ("500m" -> 0.5, "2Gi" -> 2147483648)."""
    match = QUANTITY.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 4Gi)")
    return float(match.group(1)) * _QUANTITY_FACTORS[match.group(3)]


def _quantity(value: str) -> str:
    quantity_value(value)
    return value


Quantity = Annotated[str, AfterValidator(_quantity)]

# An image reference pinned to an explicit tag or digest; never `latest`.
IMAGE = re.compile(r"^[a-z0-9]([a-z0-9.\-/_:]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}|@sha256:[a-f0-9]{64})$")


def _image(value: str) -> str:
    if not IMAGE.match(value) or value.rsplit(":", 1)[-1] == "latest":
        raise ValueError(f"{value!r} must name an image with a pinned tag or digest (not latest)")
    return value


Image = Annotated[str, AfterValidator(_image)]
EXACT_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.\-]+)?$")


def _exact_version(value: str) -> str:
    if not EXACT_VERSION.match(value):
        raise ValueError(f"{value!r} is not an exact chart version (x.y.z; no ranges)")
    return value


ExactVersion = Annotated[str, AfterValidator(_exact_version)]


class ComputeResources(StrictModel):
    """CPU and memory of one container."""

    cpu: Quantity
    memory: Quantity


class ResourcesConfig(StrictModel):
    """Requests and limits of one container; limits may not be below requests."""

    requests: ComputeResources
    limits: ComputeResources

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> ResourcesConfig:
        for name in ("cpu", "memory"):
            request, limit = getattr(self.requests, name), getattr(self.limits, name)
            if quantity_value(limit) < quantity_value(request):
                raise ValueError(f"limits.{name} ({limit}) is below requests.{name} ({request})")
        return self


def resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> ResourcesConfig:
    return ResourcesConfig(
        requests=ComputeResources(cpu=cpu, memory=memory), limits=ComputeResources(cpu=cpu_limit, memory=memory_limit)
    )


Repository = Annotated[str, Field(pattern=r"^(https|oci)://", description="chart repository (https:// or oci://)")]


class HelmReleaseConfig(StrictModel):
    """A third-party chart installed as a pinned Helm release.

    Each release has its own model whose defaults are the pin, so a stack file sets only what it
    changes (`postgres.operator.replicas: 1`). `replicas` and `resources` are mapped onto the
    chart's own keys by the component that installs it; the chart tests check they take effect.
    """

    enabled: bool = Field(default=True, description="install it; false where the platform team runs it already")
    chart: str
    version: ExactVersion
    repository: Repository
    namespace: K8sName
    replicas: int | None = Field(default=2, ge=1, le=10, description="pods of the release's workloads")
    resources: ResourcesConfig = Field(description="requests and limits of the release's main containers")
    values: dict[str, Any] = Field(default_factory=dict, description="extra chart values, merged over ours")


class CertManagerRelease(HelmReleaseConfig):
    """cert-manager: controller, webhook and CA injector."""

    chart: str = "cert-manager"
    version: ExactVersion = "v1.21.1"
    repository: Repository = "https://charts.jetstack.io"
    namespace: K8sName = "cert-manager"
    resources: ResourcesConfig = resources("50m", "128Mi", "500m", "512Mi")


class CloudNativePgRelease(HelmReleaseConfig):
    """The CloudNativePG operator."""

    chart: str = "cloudnative-pg"
    version: ExactVersion = "0.29.0"
    repository: Repository = "https://cloudnative-pg.github.io/charts"
    namespace: K8sName = "cnpg-system"
    resources: ResourcesConfig = resources("100m", "256Mi", "1", "512Mi")


class BarmanCloudRelease(HelmReleaseConfig):
    """CloudNativePG's Barman Cloud plugin (backups to object storage)."""

    chart: str = "plugin-barman-cloud"
    version: ExactVersion = "0.7.0"
    repository: Repository = "https://cloudnative-pg.github.io/charts"
    namespace: K8sName = "cnpg-system"
    resources: ResourcesConfig = resources("50m", "128Mi", "500m", "256Mi")


class KumaRelease(HelmReleaseConfig):
    """The Kuma control plane (and its CNI DaemonSet)."""

    chart: str = "kuma"
    version: ExactVersion = "2.14.3"
    repository: Repository = "https://kumahq.github.io/charts"
    namespace: K8sName = "kuma-system"
    resources: ResourcesConfig = resources("500m", "512Mi", "2", "1Gi")


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


# ---- PostgreSQL (CloudNativePG) -------------------------------------------------------------


class PoolerConfig(StrictModel):
    """The PgBouncer Pooler in front of the primary."""

    enabled: bool = True
    instances: int = Field(default=2, ge=1, le=10)
    pool_mode: Literal["session", "transaction"] = Field(
        default="session", description="session: Kong sets session state on connect"
    )
    max_client_conn: int = Field(default=1000, ge=10, description="client connections each PgBouncer accepts")
    default_pool_size: int = Field(default=20, ge=1, description="server connections per PgBouncer (user, db) pair")
    resources: ResourcesConfig = resources("100m", "128Mi", "500m", "256Mi")


class BackupConfig(StrictModel):
    """Base backups and WAL archiving to S3-compatible storage (Barman Cloud plugin)."""

    enabled: bool = False
    destination_path: str = Field(default="", description="s3://bucket/path")
    endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint; unset for AWS S3")
    region: str = Field(default="us-east-1", description="bucket region (used by the pre-flight check)")
    credentials_secret: str | None = Field(
        default=None,
        description="existing Secret with ACCESS_KEY_ID and ACCESS_SECRET_KEY; unset: created from the secure "
        "keys backupAccessKeyId and backupSecretAccessKey",
    )
    schedule: str = Field(default="0 0 2 * * *", description="six-field cron (with seconds) of base backups")
    retention: str = Field(default="30d", pattern=r"^[1-9][0-9]*[dwm]$", description="e.g. 30d, 8w, 6m")

    @property
    def bucket(self) -> str:
        return self.destination_path.removeprefix("s3://").split("/", 1)[0]

    @model_validator(mode="after")
    def _destination_when_enabled(self) -> BackupConfig:
        if self.enabled and not re.match(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$", self.destination_path):
            raise ValueError("destinationPath must be s3://<bucket>[/<path>] when backups are enabled")
        if len(self.schedule.split()) != 6:
            raise ValueError(f"schedule {self.schedule!r} must have six fields (seconds first)")
        return self


class PostgresConfig(StrictModel):
    """The HA PostgreSQL cluster behind Kong (CloudNativePG)."""

    operator: CloudNativePgRelease = CloudNativePgRelease()
    barman_plugin: BarmanCloudRelease = BarmanCloudRelease()
    cluster_name: K8sName = "kong-pg"
    image: Image = "ghcr.io/cloudnative-pg/postgresql:17.6"
    instances: int = Field(default=3, ge=1, le=9, description="1 primary + read replicas")
    database: K8sName = "kong"
    owner: K8sName = "kong"
    storage_size: Quantity = "20Gi"
    storage_class: str | None = None
    max_connections: int = Field(default=500, ge=50, le=10000, description="PostgreSQL max_connections")
    reserved_connections: int = Field(
        default=20, ge=3, description="kept free for superuser, replication and the operator"
    )
    synchronous_replicas: int = Field(default=1, ge=0, description="quorum of synchronous standbys (0: async)")
    resources: ResourcesConfig = resources("500m", "1Gi", "2", "4Gi")
    pooler: PoolerConfig = PoolerConfig()
    backup: BackupConfig = BackupConfig()
    pod_monitor: bool = Field(default=True, description="create a PodMonitor (needs the Prometheus operator CRDs)")

    @property
    def usable_connections(self) -> int:
        return self.max_connections - self.reserved_connections

    @model_validator(mode="after")
    def _replication(self) -> PostgresConfig:
        if self.synchronous_replicas > self.instances - 1:
            raise ValueError(
                f"synchronousReplicas ({self.synchronous_replicas}) needs at least "
                f"{self.synchronous_replicas + 1} instances, got {self.instances}"
            )
        if self.reserved_connections >= self.max_connections:
            raise ValueError("reservedConnections must be below maxConnections")
        return self


# ---- Kong Gateway ----------------------------------------------------------------------------


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


# ---- TLS and the API catalogue ----------------------------------------------------------------

HOSTNAME = re.compile(r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,63}$")


def _hostname(value: str) -> str:
    if not HOSTNAME.match(value):
        raise ValueError(f"{value!r} is not a DNS hostname")
    return value


Hostname = Annotated[str, AfterValidator(_hostname)]


class CertManagerConfig(StrictModel):
    """cert-manager and the platform's issuers."""

    release: CertManagerRelease = CertManagerRelease()
    acme_email: str | None = Field(
        default=None, pattern=r"^[^@\s]+@[^@\s]+$", description="enables the Let's Encrypt issuer (HTTP-01 via Kong)"
    )
    acme_server: str = Field(
        default="https://acme-v02.api.letsencrypt.org/directory",
        pattern=r"^https://",
        description="ACME directory (use the staging URL while testing)",
    )
    issuer: Literal["internal-ca", "letsencrypt"] = Field(
        default="internal-ca", description="which ClusterIssuer signs the gateway's certificates"
    )
    certificate_duration: str = Field(default="2160h", pattern=r"^[0-9]+h$")
    renew_before: str = Field(default="720h", pattern=r"^[0-9]+h$")

    @model_validator(mode="after")
    def _letsencrypt_needs_email(self) -> CertManagerConfig:
        if self.issuer == "letsencrypt" and not self.acme_email:
            raise ValueError("issuer letsencrypt needs acmeEmail")
        if int(self.renew_before[:-1]) >= int(self.certificate_duration[:-1]):
            raise ValueError(f"renewBefore ({self.renew_before}) must be shorter than certificateDuration")
        return self


class RateLimitConfig(StrictModel):
    """Requests allowed per window: by client IP on public APIs, by consumer on authenticated ones."""

    second: int | None = Field(default=None, ge=1)
    minute: int | None = Field(default=None, ge=1)
    hour: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _some_window(self) -> RateLimitConfig:
        if self.second is None and self.minute is None and self.hour is None:
            raise ValueError("set at least one of second, minute, hour")
        return self


BackendKey = tuple[str, tuple[tuple[str, str], ...]]  # namespace, sorted pod selector


def _ca_certificate(value: str) -> str:
    ca_certificate(value)
    return value


def _pin(value: str) -> str:
    if not PIN.match(value):
        raise ValueError(
            f"{value!r} is not a SHA-256 SPKI pin (base64 of 32 bytes, 44 characters ending in '='; "
            "openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)"
        )
    return value


CaCertificate = Annotated[str, AfterValidator(_ca_certificate)]
Pin = Annotated[str, AfterValidator(_pin)]


class ExternalBackendConfig(StrictModel):
    """An upstream outside the cluster and the mesh, reached over TLS that Kong verifies against these
    CA certificates only (never the system trust store), each pinned by its key."""

    host: Hostname = Field(description="the upstream's DNS name: Kong connects, sends SNI and verifies it")
    ca_certificates: list[CaCertificate] = Field(
        min_length=1, description="PEM CA certificates Kong trusts for this upstream, one per entry"
    )
    pins: list[Pin] = Field(
        default_factory=list,
        description="SHA-256 SPKI pins of exactly these CA certificates, from the upstream's owner (prod: required)",
    )
    verify_depth: int = Field(default=1, ge=0, le=9, description="CA certificates allowed above the server's")

    @model_validator(mode="after")
    def _pinned(self) -> ExternalBackendConfig:
        if re.search(r"\.svc(\.cluster\.local)?$", self.host):
            raise ValueError(f"external host {self.host!r} is a cluster Service: use backend.selector")
        if not self.pins:
            return self
        actual = {certificate_pin(ca_certificate(pem)): ca_certificate(pem) for pem in self.ca_certificates}
        for pin in self.pins:
            if pin not in actual:
                raise ValueError(
                    f"pin {pin} matches none of caCertificates (their pins: {', '.join(sorted(actual))}): "
                    "the certificate is not the one its owner named"
                )
        for pin, certificate in actual.items():
            if pin not in self.pins:
                raise ValueError(f"caCertificates: {certificate.subject.rfc4514_string()} is not pinned (pin {pin})")
        return self


class BackendConfig(StrictModel):
    """What an API routes to: pods in the cluster (by selector, reached through the mesh) or an external
    upstream (by host, over verified TLS). Kong reaches either through a Service the platform owns."""

    namespace: K8sName = Field(description="where the platform's Service for this backend lives")
    selector: Labels | None = Field(default=None, min_length=1, description="labels of the backend pods")
    external: ExternalBackendConfig | None = None
    port: int = Field(ge=1, le=65535)
    health_path: str = Field(default="/healthz", pattern=r"^/", description="active health check path")
    calls: list[K8sName] = Field(
        default_factory=list, description="APIs whose backends this backend calls (mesh permissions)"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> BackendConfig:
        if (self.selector is None) == (self.external is None):
            raise ValueError("set exactly one of selector (pods in the cluster) and external (an upstream outside it)")
        if self.external is not None and self.calls:
            raise ValueError("calls: an external backend is outside the mesh; it has no mesh permissions to grant")
        return self

    @property
    def workload(self) -> BackendKey:
        """What the mesh selects: APIs with the same namespace and selector share a backend."""
        return self.namespace, tuple(sorted((self.selector or {}).items()))


class AiTargetConfig(StrictModel):
    """An upstream of the ai-router plugin: a cluster Service's host and port."""

    host: str = Field(min_length=1, description="upstream host, e.g. gpt.ai-services.svc")
    port: int = Field(ge=1, le=65535)


class AiRouteConfig(AiTargetConfig):
    """One model's upstream."""

    model: str = Field(min_length=1)


class AiFallbackConfig(AiTargetConfig):
    """A fallback upstream and its share of unrouted AI traffic."""

    weight: int = Field(ge=1, le=1000)


class AiRoutingConfig(StrictModel):
    """Route AI requests by model (header, else JSON body field) with a weighted fallback."""

    header: str = "x-model"
    body_field: str | None = "model"
    routes: list[AiRouteConfig] = Field(default_factory=list)
    fallback: list[AiFallbackConfig] = Field(min_length=1)

    def targets(self) -> list[AiTargetConfig]:
        return [*self.routes, *self.fallback]


def _https_issuer(value: str) -> str:
    if not re.match(r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[^\s?#]*)?$", value):
        raise ValueError(
            f"{value!r} is not an https issuer URL (https://host[:port][/path], no query or fragment): "
            "tokens and keys are only trusted from the identity provider over TLS"
        )
    return value


class OidcConfig(StrictModel):
    """Bearer tokens of an OpenID Connect provider, validated at the gateway by the oidc-jwt plugin:
    keys from the issuer's discovery document, refreshed when the provider rotates them."""

    issuer: Annotated[str, AfterValidator(_https_issuer)] = Field(
        description="exactly the tokens' iss claim; <issuer>/.well-known/openid-configuration is its discovery"
    )
    audiences: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="a token's aud must name one of these"
    )
    required_scopes: list[str] = Field(default_factory=list, description="scopes every token must carry (else 403)")
    required_claims: dict[str, str] = Field(default_factory=dict, description="claim values every token must carry")
    groups_claim: str = Field(default="groups", description="the claim whose values the acl plugin checks")
    consumer_claim: str | None = Field(default=None, description="a claim naming a Kong consumer to attach")
    hide_credentials: bool | None = Field(
        default=None,
        description="keep the bearer token from the upstream (default: on for an external upstream, so the "
        "organisation's tokens never reach a third party; off for a backend in the cluster)",
    )
    leeway_seconds: int = Field(default=60, ge=0, le=300, description="clock skew allowed on exp, nbf and iat")
    jwks_cache_seconds: int = Field(default=3600, ge=60, le=86400)
    min_refresh_seconds: int = Field(
        default=30, ge=1, le=3600, description="floor between key refreshes caused by unknown key ids"
    )


class ApiConfig(StrictModel):
    """One API of the catalogue."""

    name: K8sName
    hosts: list[Hostname] = Field(min_length=1)
    paths: list[str] = Field(default_factory=lambda: ["/"])
    backend: BackendConfig
    auth: Literal["jwt", "key-auth", "oauth2", "oidc", "none"] = "jwt"
    oidc: OidcConfig | None = Field(default=None, description="the identity provider (auth oidc)")
    allowed_groups: list[str] = Field(
        default_factory=list,
        description="groups allowed (ACL): consumer groups, or with auth oidc the token's groups claim",
    )
    scopes: list[str] = Field(default_factory=list, description="OAuth2 scopes (auth oauth2)")
    rate_limit: RateLimitConfig = RateLimitConfig(minute=600)
    retries: int = Field(default=2, ge=0, le=10)
    connect_timeout_ms: int = Field(default=2000, ge=1)
    read_timeout_ms: int = Field(default=60000, ge=1)
    write_timeout_ms: int = Field(default=60000, ge=1)
    max_body_mb: int = Field(default=8, ge=1, le=1024)
    ai_routing: AiRoutingConfig | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ApiConfig:
        for path in self.paths:
            if not path.startswith("/"):
                raise ValueError(f"API {self.name}: path {path!r} must start with /")
        if self.auth == "none" and self.allowed_groups:
            raise ValueError(f"API {self.name}: allowedGroups need an authenticated API (auth is none)")
        if self.scopes and self.auth != "oauth2":
            raise ValueError(f"API {self.name}: scopes apply to auth oauth2 only")
        if (self.auth == "oidc") != (self.oidc is not None):
            raise ValueError(f"API {self.name}: auth oidc and the oidc settings (issuer, audiences) go together")
        return self


def _rsa_public_key(value: str) -> str:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey  # noqa: PLC0415 - only here
    from cryptography.hazmat.primitives.serialization import load_pem_public_key  # noqa: PLC0415

    try:
        key = load_pem_public_key(value.encode())
    except ValueError:
        raise ValueError("is not a PEM public key") from None
    if not isinstance(key, RSAPublicKey):
        raise ValueError("is not an RSA public key (RS256 needs RSA)")
    if key.key_size < 2048:
        raise ValueError(f"is a {key.key_size}-bit RSA key; RS256 needs at least 2048 bits")
    return value


class JwtKeyConfig(StrictModel):
    """An RS256 verification key: the issuer's public key (the JWT `iss` claim names it)."""

    issuer: str = Field(min_length=1, description="value of the token's iss claim")
    public_key: Annotated[str, AfterValidator(_rsa_public_key)]


class ConsumerConfig(StrictModel):
    """An API consumer and its credentials."""

    username: K8sName
    groups: list[K8sName] = Field(default_factory=list)
    jwt_keys: list[JwtKeyConfig] = Field(default_factory=list, description="RS256 public keys of external issuers")
    generate_jwt_key: bool = Field(default=False, description="generate an RS256 key pair for a service client")
    api_key_rotations: list[str] = Field(
        default_factory=list,
        description="one API key per rotation id; add a new id to rotate, drop the old one to revoke it",
    )
    oauth2_client: bool = Field(default=False, description="an OAuth2 client-credentials client")

    @model_validator(mode="after")
    def _unique_rotations(self) -> ConsumerConfig:
        if len(set(self.api_key_rotations)) != len(self.api_key_rotations):
            raise ValueError(f"consumer {self.username}: apiKeyRotations repeat an id")
        for rotation in self.api_key_rotations:
            _dns_label(rotation)
        return self


class EdgeProtectionConfig(StrictModel):
    """DDoS guards at the edge (coarse per-client limits live in the mesh)."""

    ip_allow_list: list[str] = Field(default_factory=list, description="CIDRs; when set, all others are refused")
    ip_deny_list: list[str] = Field(default_factory=list)
    bot_deny_user_agents: list[str] = Field(default_factory=lambda: ["(?i)masscan", "(?i)sqlmap", "(?i)nikto"])
    client_header_timeout_s: int = Field(default=10, ge=1, le=300)
    client_body_timeout_s: int = Field(default=30, ge=1, le=600)


class PinnedHostConfig(StrictModel):
    """A gateway host whose serving key clients may pin: the program owns its keys, so the key survives
    certificate renewals (cert-manager rotationPolicy Never), and a prepared backup key is pinned too."""

    host: Hostname
    keys: list[K8sName] = Field(
        min_length=2,
        description="key ids, the serving key first; the rest are backups whose pins clients hold as well. "
        "Rotating = moving a backup to the front",
    )

    @model_validator(mode="after")
    def _distinct(self) -> PinnedHostConfig:
        if len(set(self.keys)) != len(self.keys):
            raise ValueError(f"pinned host {self.host}: key ids repeat: {self.keys}")
        return self


class CatalogueConfig(StrictModel):
    """An API catalogue: APIs, consumers, pinned hosts and how their limits are counted. The
    platform stack's own (`catalogue`), or a team's catalogue stack (see CatalogueStackConfig)."""

    apis: list[ApiConfig] = Field(default_factory=list)
    consumers: list[ConsumerConfig] = Field(default_factory=list)
    pinned_hosts: list[PinnedHostConfig] = Field(
        default_factory=list, description="hosts whose serving keys clients pin (gatewayPins output)"
    )
    rate_limit_policy: Literal["local", "redis", "cluster"] = Field(
        default="local", description="local: per-pod counters; redis: shared; cluster: in PostgreSQL"
    )
    redis_host: str | None = None
    oauth2_token_ttl_s: int = Field(default=3600, ge=60)

    @property
    def by_name(self) -> dict[str, ApiConfig]:
        return {api.name: api for api in self.apis}

    @property
    def namespaces(self) -> list[str]:
        """The namespaces the catalogue's objects live in, in order of first use."""
        return list(dict.fromkeys(api.backend.namespace for api in self.apis))

    @model_validator(mode="after")
    def _catalogue(self) -> CatalogueConfig:
        names = [a.name for a in self.apis]
        if len(set(names)) != len(names):
            raise ValueError(f"API names repeat: {sorted({n for n in names if names.count(n) > 1})}")
        users = [c.username for c in self.consumers]
        if len(set(users)) != len(users):
            raise ValueError(f"consumer usernames repeat: {sorted({u for u in users if users.count(u) > 1})}")
        groups = {g for c in self.consumers for g in c.groups}
        routes: dict[tuple[str, str], str] = {}
        for api in self.apis:
            unknown = sorted(set(api.allowed_groups) - groups)
            if unknown and api.auth != "oidc":  # the identity provider's groups are not ours to list
                raise ValueError(f"API {api.name}: allowedGroups {unknown} are not the group of any consumer")
            for host in api.hosts:
                for path in api.paths:
                    other = routes.setdefault((host, path), api.name)
                    if other != api.name:
                        raise ValueError(f"API {api.name}: {host}{path} is already routed by API {other}")
        if self.rate_limit_policy == "redis" and not self.redis_host:
            raise ValueError("rateLimitPolicy redis needs redisHost")
        hosts = {host for api in self.apis for host in api.hosts}
        pinned = [p.host for p in self.pinned_hosts]
        for host in pinned:
            if pinned.count(host) > 1:
                raise ValueError(f"pinnedHosts: {host} is listed twice")
            if host not in hosts:
                raise ValueError(f"pinnedHosts: {host} is not a host of any API ({name_hint(host, hosts)})")
        self._one_namespace_per_ca()
        check_api_references(self.apis)
        return self

    def _one_namespace_per_ca(self) -> None:
        """Kong stores a CA certificate once (its digest is unique) and the controller makes one per
        Secret, so a CA certificate's Secret can live in one namespace only."""
        seen: dict[str, tuple[str, str]] = {}
        for api in self.apis:
            external = api.backend.external
            for pem in external.ca_certificates if external else []:
                pin = certificate_pin(ca_certificate(pem))
                namespace, other = seen.setdefault(pin, (api.backend.namespace, api.name))
                if namespace != api.backend.namespace:
                    raise ValueError(
                        f"API {api.name}: its CA certificate (pin {pin}) is also trusted by API {other} in "
                        f"namespace {namespace}; Kong keeps one copy of a CA certificate, so APIs that trust "
                        "the same CA share a backend namespace"
                    )

    @property
    def pinned(self) -> dict[str, PinnedHostConfig]:
        return {p.host: p for p in self.pinned_hosts}

    def production_problems(self) -> list[str]:
        """What prod refuses in any catalogue."""
        return [
            f"API {api.name}: backend.external.pins are required in prod (one per CA certificate)"
            for api in self.apis
            if api.backend.external and not api.backend.external.pins
        ]


def check_api_references(apis: list[ApiConfig]) -> None:
    """Backends call APIs of the same catalogue, in the mesh; AI routes name cluster Services."""
    by_name = {api.name: api for api in apis}
    for api in apis:
        unknown = sorted(set(api.backend.calls) - by_name.keys())
        if unknown:
            raise ValueError(f"API {api.name}: backend.calls names unknown APIs {unknown} (mesh permission)")
        external = sorted(called for called in api.backend.calls if by_name[called].backend.external)
        if external:
            raise ValueError(
                f"API {api.name}: backend.calls names {external}, whose backends are external "
                "(outside the mesh, nothing to permit)"
            )
        for target in api.ai_routing.targets() if api.ai_routing else []:
            if not re.match(r"^[a-z0-9-]+\.[a-z0-9-]+\.svc(\.cluster\.local)?$", target.host):
                raise ValueError(
                    f"API {api.name}: AI route host {target.host!r} must be a cluster Service "
                    "(<name>.<namespace>.svc) so the mesh can permit Kong to reach it"
                )


class ApisConfig(CatalogueConfig):
    """The platform stack's catalogue, with the gateway-wide edge settings."""

    edge: EdgeProtectionConfig = EdgeProtectionConfig()
    trusted_ips: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0", "::/0"], description="proxies whose client-IP header Kong trusts"
    )
    real_ip_header: str = "X-Forwarded-For"


class CatalogueRegistration(StrictModel):
    """A team's catalogue stack (project api-catalogue) and the application namespaces it owns: its
    objects live there and nowhere else, so catalogues never touch each other's objects."""

    name: K8sName
    namespaces: list[K8sName] = Field(min_length=1)


# ---- the service mesh (Kuma) ----------------------------------------------------------------------

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


# ---- observability ------------------------------------------------------------------------------


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


class ProtectionConfig(StrictModel):
    """What keeps production data alive through a mistaken `pulumi destroy` or a change that would
    replace it: the PostgreSQL cluster with its backups, credentials and server CA, Elasticsearch,
    their namespaces and the operators whose CRDs they are."""

    protect: bool = Field(
        default=False,
        description="Pulumi refuses to delete or replace them (prod: required); to tear down, set false and "
        "`pulumi up` first (see the README's runbook)",
    )
    retain_on_delete: bool = Field(
        default=False,
        description="a deliberate destroy leaves the data objects (clusters, their namespaces, Secrets) in the "
        "cluster, to be deleted by hand",
    )


class PlatformConfig(StrictModel):
    """The whole `api-platform:platform` object of a stack."""

    environment: Literal["dev", "prod"] = Field(description="the environment class; prod turns on the strict checks")
    cluster: ClusterConfig = Field(default=ClusterConfig(), description="the Kubernetes provider's target")
    labels: Labels = Field(default_factory=dict, description="extra labels on every Kubernetes object")
    namespaces: NamespacesConfig = Field(default=NamespacesConfig(), description="the namespaces the platform owns")
    install_operators: bool = Field(
        default=True,
        description="install third-party operators and CRDs; false where the platform team manages them separately",
    )
    charts_directory: str | None = Field(
        default=None,
        description="air-gapped clusters: read every pinned chart from <dir>/<chart>-<version> (a chart source "
        "directory) instead of its repository; relative to the project directory",
    )
    postgres: PostgresConfig = Field(default=PostgresConfig(), description="HA PostgreSQL behind Kong")
    kong: KongConfig = Field(default=KongConfig(), description="the gateway and its ingress controller")
    cert_manager: CertManagerConfig = Field(default=CertManagerConfig(), description="TLS certificates")
    catalogue: ApisConfig = Field(default=ApisConfig(), description="APIs, consumers and edge protection")
    catalogues: list[CatalogueRegistration] = Field(
        default_factory=list,
        description="teams' catalogue stacks (project api-catalogue) and the application namespaces each owns",
    )
    mesh: MeshConfig = Field(default=MeshConfig(), description="the Kuma service mesh")
    observability: ObservabilityConfig = Field(default=ObservabilityConfig(), description="metrics, logs, traces")
    protection: ProtectionConfig = Field(default=ProtectionConfig(), description="protection of stateful objects")

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    def helm_releases(self) -> dict[str, HelmReleaseConfig]:
        """The pinned releases this stack installs, by their key in the stack file."""
        if not self.install_operators:
            return {}
        obs = self.observability
        releases = {
            "certManager.release": self.cert_manager.release,
            "postgres.operator": self.postgres.operator,
            "postgres.barmanPlugin": self.postgres.barman_plugin,
            "mesh.release": self.mesh.release,
            "observability.elasticsearch.operator": obs.elasticsearch.operator,
            "observability.tracing.jaeger": obs.tracing.jaeger,
            "observability.tracing.collector": obs.tracing.collector,
            "observability.logging.release": obs.logging.release,
        }
        if not self.postgres.backup.enabled:
            del releases["postgres.barmanPlugin"]
        return {key: release for key, release in releases.items() if release.enabled}

    def local_chart(self, release: HelmReleaseConfig) -> Path | None:
        """Where a release's chart is read from when `chartsDirectory` is set."""
        if self.charts_directory is None:
            return None
        return Path(self.charts_directory) / f"{release.chart}-{release.version}"

    @model_validator(mode="after")
    def _local_charts(self) -> PlatformConfig:
        """A local chart must exist and be the pinned version: the pin, not the directory, decides."""
        for key, release in self.helm_releases().items():
            path = self.local_chart(release)
            if path is None:
                continue
            try:
                metadata = yaml.safe_load((path / "Chart.yaml").read_text())
            except OSError:
                raise ValueError(f"chartsDirectory: no chart directory {path} for {key}") from None
            if (metadata.get("name"), str(metadata.get("version"))) != (release.chart, release.version):
                raise ValueError(
                    f"chartsDirectory: {path} holds {metadata.get('name')} {metadata.get('version')}, "
                    f"but {key} pins {release.chart} {release.version}"
                )
        return self

    @model_validator(mode="after")
    def _connection_budget(self) -> PlatformConfig:
        """50 Kong pods must not be able to exhaust PostgreSQL: refuse such a config up front."""
        kong, pg = self.kong, self.postgres
        per_pod = kong.nginx_worker_processes * kong.pg_pool_size
        worst_case = kong.autoscaling.max_replicas * per_pod
        formula = (
            f"kong.autoscaling.maxReplicas ({kong.autoscaling.max_replicas}) x kong.nginxWorkerProcesses "
            f"({kong.nginx_worker_processes}) x kong.pgPoolSize ({kong.pg_pool_size}) = {worst_case}"
        )
        if pg.pooler.enabled:
            accepted = pg.pooler.instances * pg.pooler.max_client_conn
            if worst_case > accepted:
                raise ValueError(
                    f"connection budget: {formula} client connections exceed what the pooler accepts: "
                    f"postgres.pooler.instances ({pg.pooler.instances}) x maxClientConn ({pg.pooler.max_client_conn})"
                    f" = {accepted}"
                )
            server_side = pg.pooler.instances * pg.pooler.default_pool_size
            if server_side > pg.usable_connections:
                raise ValueError(
                    f"connection budget: postgres.pooler.instances ({pg.pooler.instances}) x defaultPoolSize "
                    f"({pg.pooler.default_pool_size}) = {server_side} server connections exceed "
                    f"postgres.maxConnections - reservedConnections = {pg.usable_connections}"
                )
        elif worst_case > pg.usable_connections:
            raise ValueError(
                f"connection budget: {formula} connections exceed postgres.maxConnections - reservedConnections "
                f"= {pg.usable_connections} (enable postgres.pooler or lower the pool size)"
            )
        read_only = kong.autoscaling.max_replicas * kong.nginx_worker_processes * kong.pg_ro_pool_size
        if pg.instances > 1 and read_only > pg.usable_connections:
            raise ValueError(
                f"connection budget: kong.autoscaling.maxReplicas x nginxWorkerProcesses x pgRoPoolSize = "
                f"{read_only} read-only connections could all land on one replica, above its "
                f"maxConnections - reservedConnections = {pg.usable_connections}"
            )
        return self

    @model_validator(mode="after")
    def _observability_namespaces(self) -> PlatformConfig:
        """Jaeger and the collector read Elasticsearch's Secrets, so they share its namespace."""
        obs, logs = self.namespaces.observability.name, self.namespaces.logging.name
        tracing = self.observability.tracing
        for key, release in (("jaeger", tracing.jaeger), ("collector", tracing.collector)):
            if release.namespace != obs:
                raise ValueError(
                    f"observability.tracing.{key}.namespace must be namespaces.observability ({obs}), "
                    f"got {release.namespace}"
                )
        if self.observability.logging.release.namespace != logs:
            raise ValueError(f"observability.logging.release.namespace must be namespaces.logging ({logs})")
        return self

    @model_validator(mode="after")
    def _mesh_references(self) -> PlatformConfig:
        """Mesh overrides name APIs of the platform's catalogue with backends in the mesh."""
        apis = self.catalogue.by_name
        overridden: dict[BackendKey, str] = {}
        for override in self.mesh.overrides:
            if override.api not in apis:
                raise ValueError(f"mesh.overrides: unknown API {override.api!r} ({name_hint(override.api, apis)})")
            backend = apis[override.api].backend
            if backend.external:
                raise ValueError(
                    f"mesh.overrides: API {override.api!r} has an external backend; mesh policies apply "
                    "to backends in the mesh"
                )
            if backend.workload in overridden:
                raise ValueError(
                    f"mesh.overrides: {overridden[backend.workload]!r} and {override.api!r} route to the same backend "
                    f"({backend.namespace}, {dict(backend.selector or {})}); mesh policies apply per backend, "
                    "so give it one override"
                )
            overridden[backend.workload] = override.api
        return self

    @model_validator(mode="after")
    def _catalogue_registrations(self) -> PlatformConfig:
        """A registered catalogue owns application namespaces the platform creates, alone."""
        applications = {ns.name for ns in self.namespaces.applications}
        owner: dict[str, str] = {}
        names = [c.name for c in self.catalogues]
        if len(set(names)) != len(names):
            raise ValueError(f"catalogues: names repeat: {sorted({n for n in names if names.count(n) > 1})}")
        for registration in self.catalogues:
            for ns in registration.namespaces:
                if ns not in applications:
                    raise ValueError(
                        f"catalogues: {registration.name} owns namespace {ns}, which is not one of "
                        f"namespaces.applications ({name_hint(ns, applications)})"
                    )
                other = owner.setdefault(ns, registration.name)
                if other != registration.name:
                    raise ValueError(f"catalogues: namespace {ns} is owned by both {other} and {registration.name}")
        for api in self.catalogue.apis:
            if api.backend.namespace in owner:
                raise ValueError(
                    f"API {api.name}: namespace {api.backend.namespace} belongs to the catalogue stack "
                    f"{owner[api.backend.namespace]}; the platform's own catalogue uses other namespaces"
                )
        return self

    @model_validator(mode="after")
    def _production_requirements(self) -> PlatformConfig:
        """ADR-001's availability targets, enforced for prod stacks."""
        if not self.is_prod:
            return self
        problems = []
        if self.postgres.instances < 3:
            problems.append(f"postgres.instances must be at least 3 in prod (got {self.postgres.instances})")
        if not self.postgres.backup.enabled:
            problems.append("postgres.backup.enabled must be true in prod")
        if self.kong.autoscaling.min_replicas < 3:
            problems.append(
                f"kong.autoscaling.minReplicas must be at least 3 in prod (got {self.kong.autoscaling.min_replicas})"
            )
        if self.kong.controller.replicas < 2:
            problems.append("kong.controller.replicas must be at least 2 in prod")
        if self.observability.elasticsearch.nodes < 3:
            nodes = self.observability.elasticsearch.nodes
            problems.append(f"observability.elasticsearch.nodes must be at least 3 in prod (got {nodes})")
        if self.observability.tracing.storage != "elasticsearch":
            problems.append("observability.tracing.storage must be elasticsearch in prod")
        if self.mesh.mtls_mode != "STRICT":
            problems.append(f"mesh.mtlsMode must be STRICT in prod (got {self.mesh.mtls_mode})")
        if not self.protection.protect:
            problems.append("protection.protect must be true in prod (the database and Elasticsearch)")
        problems += self.catalogue.production_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self


class CatalogueStackConfig(StrictModel):
    """The whole `api-catalogue:catalogue` object of a team's catalogue stack: its APIs and consumers,
    deployed on a platform stack whose outputs it reads (a StackReference), in the namespaces the
    platform registered for it (`catalogues` in the platform's stack file)."""

    name: K8sName = Field(description="the catalogue's name, as registered in the platform's `catalogues`")
    platform_stack: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
        description="the platform stack, fully qualified: <organization>/api-platform/<stack>",
    )
    environment: Literal["dev", "prod"]
    cluster: ClusterConfig = Field(default=ClusterConfig(), description="the Kubernetes provider's target")
    labels: Labels = Field(default_factory=dict, description="extra labels on every Kubernetes object")
    protection: ProtectionConfig = Field(
        default=ProtectionConfig(), description="protection of the keys clients pin or hold (prod: required)"
    )
    consumers_namespace: K8sName | None = Field(
        default=None, description="where the consumers and their credentials live; default: the first APIs' namespace"
    )
    catalogue: CatalogueConfig = Field(default=CatalogueConfig(), description="the APIs, consumers and pinned hosts")

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def owned_namespaces(self) -> list[str]:
        """Every namespace the stack puts objects in (checked against the platform's registration)."""
        consumers = [self.consumer_namespace] if self.catalogue.consumers else []
        return list(dict.fromkeys([*self.catalogue.namespaces, *consumers]))

    @property
    def consumer_namespace(self) -> str:
        return self.consumers_namespace or (self.catalogue.namespaces or [""])[0]

    @model_validator(mode="after")
    def _consistent(self) -> CatalogueStackConfig:
        if self.catalogue.consumers and not self.consumer_namespace:
            raise ValueError("consumersNamespace is required when the catalogue has consumers but no APIs")
        if self.is_prod:
            problems = self.catalogue.production_problems()
            if not self.protection.protect:
                problems.append("protection.protect must be true in prod (the keys clients pin or hold)")
            if problems:
                raise ValueError("; ".join(problems))
        return self
