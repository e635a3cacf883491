"""PostgreSQL (CloudNativePG): the operator and backup plugin releases, the cluster, its pooler and
backups."""

from __future__ import annotations

import re
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
    resources,
)


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
