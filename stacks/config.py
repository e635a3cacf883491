"""Typed stack configuration: the stack-level models, composed of each capability's models
(components/models/), with the checks that span capabilities.

Everything that differs between environments is read from the `api-platform:platform` object
in `Pulumi.<stack>.yaml` (a team's catalogue stack: `api-catalogue:catalogue`) and validated here
before any resource is registered. Keys are camelCase in YAML (the Pulumi convention) and
snake_case in Python. Secrets never live in this object: they are separate secure keys (see
`stacks.secrets`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, model_validator

from components.models.apis import BackendKey
from components.models.base import HelmReleaseConfig, K8sName, Labels, StrictModel, name_hint
from components.models.catalogue import ApisConfig, CatalogueConfig, CatalogueRegistration
from components.models.cluster import ClusterConfig, NamespacesConfig, ProtectionConfig
from components.models.kong import KongConfig
from components.models.mesh import MeshConfig
from components.models.observability import ObservabilityConfig
from components.models.policy import PolicyEngineConfig
from components.models.postgres import PostgresConfig
from components.models.tls import CertManagerConfig


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
    policy: PolicyEngineConfig = Field(
        default=PolicyEngineConfig(), description="Open Policy Agent beside Kong (dynamic policy evaluation)"
    )

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
    def _policy_engine(self) -> PlatformConfig:
        """APIs with a policy need OPA beside Kong."""
        policed = [api.name for api in self.catalogue.policed]
        if policed and not self.policy.enabled:
            raise ValueError(f"policy.enabled is false, but APIs {policed} have a policy: OPA decides their requests")
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
