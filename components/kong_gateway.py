"""KongGateway: Kong in PostgreSQL mode as explicit Kubernetes resources (no chart).

A Deployment without `replicas` (the HorizontalPodAutoscaler owns it), the HPA, a
PodDisruptionBudget, the proxy / admin / status Services, a NetworkPolicy that lets only the
ingress controller reach the admin API, and migration Jobs named after the image version:
`up` (bootstrap on first install) runs before the Deployment changes, `finish` after it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.k8s import (
    Resources,
    app_labels,
    child,
    meta,
    restricted_container_security,
    restricted_pod_security,
    selector_labels,
    spread_over_zones_and_nodes,
)
from components.models.kong import KongConfig

KONG_USER = 1000  # the `kong` user of the official image
PROXY_PORT, PROXY_TLS_PORT, ADMIN_TLS_PORT, STATUS_PORT = 8000, 8443, 8444, 8100
PG_CA_MOUNT = "/etc/kong/postgres-ca"

# `kong migrations list` exits 3 when the database needs bootstrapping, 4 when a previous
# upgrade still has to finish, 5 when new migrations are pending, 0 when up to date.
MIGRATIONS_UP = """\
set -u
kong migrations list >/dev/null 2>&1; state=$?
case "$state" in
  0) echo "database schema is up to date" ;;
  3) kong migrations bootstrap ;;
  4) kong migrations finish && kong migrations up ;;
  5) kong migrations up ;;
  *) echo "kong migrations list failed with $state" >&2; exit 1 ;;
esac
"""


@dataclass(frozen=True)
class DatabaseConnection:
    host: pulumi.Input[str]
    ro_host: pulumi.Input[str]
    database: str
    secret: str  # in the gateway's namespace; keys: username, password, ca.crt (the server CA)
    port: int = 5432


@dataclass(frozen=True)
class KongGatewayArgs:
    namespace: str
    config: KongConfig  # image, sizing, autoscaling, tuning and the proxy Service, as validated
    database: DatabaseConnection
    admin_clients: Mapping[str, str]  # pod labels allowed to reach the admin API
    # Settings other capabilities add (TLS, tracing, ...), as KONG_* environment variables.
    extra_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Custom Lua plugins: plugin name -> {file name: source}, mounted at /opt/kong/plugins/<name>.
    custom_plugins: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Lua libraries the plugins share: name -> {file name: source}, mounted at /opt/<name>
    # (required as `<name>.<module>` through KONG_LUA_PACKAGE_PATH).
    lua_libraries: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Containers beside Kong in the gateway's pods (not its migration Jobs), their volumes, and the
    # ports they serve health and metrics on (the NetworkPolicy opens them inside the cluster).
    sidecars: list[k8s.core.v1.ContainerArgs] = field(default_factory=list)
    sidecar_volumes: list[k8s.core.v1.VolumeArgs] = field(default_factory=list)
    sidecar_ports: list[int] = field(default_factory=list)
    depends_on: list[pulumi.Resource] = field(default_factory=list)


def gateway_selector(name: str) -> dict[str, str]:
    """The selector labels of the gateway pods of a KongGateway called `name`."""
    return selector_labels(app_labels(name, "gateway"))


def lua_sources(args: KongGatewayArgs) -> list[tuple[str, str, Mapping[str, str]]]:
    """(ConfigMap suffix, mount path, files) of every Lua source shipped to Kong: the plugins and
    the libraries they share."""
    return [
        *(
            (f"plugin-{plugin}", f"/opt/kong/plugins/{plugin}", files)
            for plugin, files in sorted(args.custom_plugins.items())
        ),
        *(
            (f"lua-{library.replace('_', '-')}", f"/opt/{library}", files)  # Lua names, DNS names
            for library, files in sorted(args.lua_libraries.items())
        ),
    ]


def plugins_checksum(plugins: Mapping[str, Mapping[str, str]]) -> str:
    digest = hashlib.sha256()
    for plugin, files in sorted(plugins.items()):
        for file_name, source in sorted(files.items()):
            digest.update(f"{plugin}/{file_name}\0{source}\0".encode())
    return digest.hexdigest()


def version_slug(image: str) -> str:
    """A DNS-label-safe form of the image tag: `kong:3.9.1` -> `3-9-1`."""
    tag = image.rsplit("@", 1)[-1] if "@" in image else image.rsplit(":", 1)[-1]
    return re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-")[:20]


class KongGateway(pulumi.ComponentResource):
    proxy_service: k8s.core.v1.Service
    admin_url: pulumi.Output[str]
    proxy_address: pulumi.Output[str]

    def __init__(self, name: str, args: KongGatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:kong:KongGateway", name, None, opts)
        self._name, self._args = name, args
        ns = args.namespace
        self.labels = app_labels(name, "gateway")
        selector = gateway_selector(name)

        self.plugin_config_maps = [
            k8s.core.v1.ConfigMap(
                f"{name}-{config_map}",
                metadata=meta(f"{name}-{config_map}", ns, self.labels),
                data=dict(files),
                opts=child(self),
            )
            for config_map, _path, files in lua_sources(args)
        ]
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=meta(name, ns, self.labels),
            automount_service_account_token=False,
            opts=child(self),
        )
        slug = version_slug(args.config.image)
        up = self._migration_job(
            f"{name}-migrations-up",
            f"{name}-migrations-up-{slug}",
            MIGRATIONS_UP,
            [*args.depends_on, *self.plugin_config_maps],
        )
        self.deployment = self._deployment(selector, [up])
        self._migration_job(
            f"{name}-migrations-finish", f"{name}-migrations-finish-{slug}", "kong migrations finish", [self.deployment]
        )

        self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=meta(name, ns, self.labels),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=name
                ),
                min_replicas=args.config.autoscaling.min_replicas,
                max_replicas=args.config.autoscaling.max_replicas,
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(
                                type="Utilization", average_utilization=args.config.autoscaling.target_cpu_utilization
                            ),
                        ),
                    )
                ],
                behavior=k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
                    scale_up=k8s.autoscaling.v2.HPAScalingRulesArgs(
                        stabilization_window_seconds=args.config.autoscaling.scale_up_stabilization_seconds,
                        select_policy="Max",
                        policies=[
                            k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Percent", value=100, period_seconds=15),
                            k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Pods", value=4, period_seconds=15),
                        ],
                    ),
                    scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(
                        stabilization_window_seconds=args.config.autoscaling.scale_down_stabilization_seconds,
                        select_policy="Max",
                        policies=[k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Percent", value=10, period_seconds=60)],
                    ),
                ),
            ),
            opts=child(self, [self.deployment]),
        )
        self.pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=meta(name, ns, self.labels),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=args.config.max_unavailable,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                unhealthy_pod_eviction_policy="AlwaysAllow",
            ),
            opts=child(self),
        )
        proxy = args.config.proxy
        self.proxy_service = self._service(
            "proxy",
            selector,
            [("http", 80, "proxy"), ("https", 443, "proxy-tls")],
            service_type=proxy.type,
            annotations=proxy.annotations,
            external_traffic_policy=proxy.external_traffic_policy if proxy.type != "ClusterIP" else None,
            source_ranges=proxy.load_balancer_source_ranges or None,
        )
        admin = self._service("admin", selector, [("admin-tls", ADMIN_TLS_PORT, "admin-tls")])
        self._service("status", selector, [("status", STATUS_PORT, "status")], extra_labels={"enable-metrics": "true"})
        self._network_policy(selector)

        self.admin_url = admin.metadata.name.apply(lambda svc: f"https://{svc}.{ns}.svc:{ADMIN_TLS_PORT}")
        self.proxy_address = self.proxy_service.status.apply(_load_balancer_address)
        self.proxy_service_name = f"{ns}/{name}-proxy"
        self.register_outputs({"admin_url": self.admin_url, "proxy_address": self.proxy_address})

    # -- pod ----------------------------------------------------------------------------------

    def _env(self) -> list[k8s.core.v1.EnvVarArgs]:
        args, db = self._args, self._args.database
        values: dict[str, pulumi.Input[str]] = {
            "KONG_DATABASE": "postgres",
            "KONG_PG_HOST": db.host,
            "KONG_PG_PORT": str(db.port),
            "KONG_PG_DATABASE": db.database,
            "KONG_PG_SSL": "on",
            "KONG_PG_SSL_VERIFY": "on",
            "KONG_PG_POOL_SIZE": str(args.config.pg_pool_size),
            "KONG_PG_RO_HOST": db.ro_host,
            "KONG_PG_RO_POOL_SIZE": str(args.config.pg_ro_pool_size),
            "KONG_LUA_SSL_TRUSTED_CERTIFICATE": f"system,{PG_CA_MOUNT}/ca.crt",
            "KONG_PREFIX": "/kong_prefix",
            "KONG_PROXY_LISTEN": f"0.0.0.0:{PROXY_PORT} reuseport backlog=16384, "
            f"0.0.0.0:{PROXY_TLS_PORT} http2 ssl reuseport backlog=16384",
            "KONG_ADMIN_LISTEN": f"0.0.0.0:{ADMIN_TLS_PORT} http2 ssl",
            "KONG_STATUS_LISTEN": f"0.0.0.0:{STATUS_PORT}",
            "KONG_ADMIN_GUI_LISTEN": "off",
            # TLS 1.3 only: Kong ignores KONG_SSL_PROTOCOLS unless the suite is `custom`.
            "KONG_SSL_CIPHER_SUITE": "modern",
            "KONG_STREAM_LISTEN": "off",
            "KONG_CLUSTER_LISTEN": "off",
            "KONG_PORT_MAPS": f"80:{PROXY_PORT}, 443:{PROXY_TLS_PORT}",
            "KONG_NGINX_WORKER_PROCESSES": str(args.config.nginx_worker_processes),
            "KONG_NGINX_EVENTS_WORKER_CONNECTIONS": "16384",
            "KONG_NGINX_HTTP_KEEPALIVE_REQUESTS": "10000",
            "KONG_UPSTREAM_KEEPALIVE_POOL_SIZE": "512",
            "KONG_UPSTREAM_KEEPALIVE_MAX_REQUESTS": "10000",
            "KONG_MEM_CACHE_SIZE": args.config.mem_cache_size,
            "KONG_PROXY_ACCESS_LOG": "/dev/stdout",
            "KONG_PROXY_ERROR_LOG": "/dev/stderr",
            "KONG_ADMIN_ACCESS_LOG": "/dev/stdout",
            "KONG_ADMIN_ERROR_LOG": "/dev/stderr",
            "KONG_STATUS_ACCESS_LOG": "off",
            "KONG_ANONYMOUS_REPORTS": "off",
            "KONG_KIC": "on",
            "KONG_LUA_PACKAGE_PATH": "/opt/?.lua;/opt/?/init.lua;;",
            "KONG_PLUGINS": ",".join(["bundled", *sorted(args.custom_plugins)]),
            **args.extra_env,
        }
        env = [k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in sorted(values.items())]
        for variable, key in (("KONG_PG_USER", "username"), ("KONG_PG_PASSWORD", "password")):
            env.append(
                k8s.core.v1.EnvVarArgs(
                    name=variable,
                    value_from=k8s.core.v1.EnvVarSourceArgs(
                        secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=db.secret, key=key)
                    ),
                )
            )
        return env

    def _volumes(self) -> tuple[list[k8s.core.v1.VolumeArgs], list[k8s.core.v1.VolumeMountArgs]]:
        volumes = [
            k8s.core.v1.VolumeArgs(
                name="kong-prefix", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="256Mi")
            ),
            k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="256Mi")),
            k8s.core.v1.VolumeArgs(
                name="postgres-ca",
                secret=k8s.core.v1.SecretVolumeSourceArgs(
                    secret_name=self._args.database.secret,
                    items=[k8s.core.v1.KeyToPathArgs(key="ca.crt", path="ca.crt")],
                ),
            ),
        ]
        mounts = [
            k8s.core.v1.VolumeMountArgs(name="kong-prefix", mount_path="/kong_prefix"),
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),  # noqa: S108 - an emptyDir
            k8s.core.v1.VolumeMountArgs(name="postgres-ca", mount_path=PG_CA_MOUNT, read_only=True),
        ]
        for config_map, path, _files in lua_sources(self._args):
            volumes.append(
                k8s.core.v1.VolumeArgs(
                    name=config_map,
                    config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=f"{self._name}-{config_map}"),
                )
            )
            mounts.append(k8s.core.v1.VolumeMountArgs(name=config_map, mount_path=path, read_only=True))
        return volumes, mounts

    def _container(self, name: str, **extra: object) -> k8s.core.v1.ContainerArgs:
        volumes_mounts = self._volumes()[1]
        return k8s.core.v1.ContainerArgs(
            name=name,
            image=self._args.config.image,
            env=self._env(),
            resources=Resources.of(self._args.config.resources).args(),
            security_context=restricted_container_security(),
            volume_mounts=volumes_mounts,
            **extra,  # type: ignore[arg-type]
        )

    def _pod_spec(
        self, container: k8s.core.v1.ContainerArgs, sidecars: bool = False, **extra: object
    ) -> k8s.core.v1.PodSpecArgs:
        args = self._args
        return k8s.core.v1.PodSpecArgs(
            service_account_name=self.service_account.metadata.name,
            automount_service_account_token=False,
            security_context=restricted_pod_security(KONG_USER),
            containers=[container, *(args.sidecars if sidecars else [])],
            volumes=[*self._volumes()[0], *(args.sidecar_volumes if sidecars else [])],
            **extra,  # type: ignore[arg-type]
        )

    def _migration_job(
        self, resource_name: str, job_name: str, script: str, depends_on: list[pulumi.Resource]
    ) -> k8s.batch.v1.Job:
        labels = {**app_labels(self._name, "migrations"), "kuma.io/sidecar-injection": "disabled"}
        return k8s.batch.v1.Job(
            resource_name,
            metadata=meta(job_name, self._args.namespace, labels),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=6,
                active_deadline_seconds=1200,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=self._pod_spec(
                        self._container("kong-migrations", command=["/bin/sh", "-c", script]),
                        restart_policy="OnFailure",
                    ),
                ),
            ),
            opts=child(self, depends_on),
        )

    def _deployment(self, selector: dict[str, str], depends_on: list[pulumi.Resource]) -> k8s.apps.v1.Deployment:
        args = self._args
        readiness_period = 10
        probe = k8s.core.v1.HTTPGetActionArgs
        container = self._container(
            "proxy",
            ports=[
                k8s.core.v1.ContainerPortArgs(name="proxy", container_port=PROXY_PORT),
                k8s.core.v1.ContainerPortArgs(name="proxy-tls", container_port=PROXY_TLS_PORT),
                k8s.core.v1.ContainerPortArgs(name="admin-tls", container_port=ADMIN_TLS_PORT),
                k8s.core.v1.ContainerPortArgs(name="status", container_port=STATUS_PORT),
            ],
            startup_probe=k8s.core.v1.ProbeArgs(
                http_get=probe(path="/status", port="status"), period_seconds=5, failure_threshold=60
            ),
            liveness_probe=k8s.core.v1.ProbeArgs(
                http_get=probe(path="/status", port="status"),
                period_seconds=10,
                timeout_seconds=5,
                failure_threshold=3,
            ),
            # /status/ready queries the database; tolerate a failover instead of taking every pod out.
            readiness_probe=k8s.core.v1.ProbeArgs(
                http_get=probe(path="/status/ready", port="status"),
                period_seconds=readiness_period,
                timeout_seconds=5,
                failure_threshold=math.ceil(args.config.readiness_failover_tolerance_seconds / readiness_period),
            ),
            lifecycle=k8s.core.v1.LifecycleArgs(
                pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                    exec_=k8s.core.v1.ExecActionArgs(command=["kong", "quit", "--wait=15"])
                )
            ),
        )
        return k8s.apps.v1.Deployment(
            f"{self._name}-deployment",
            metadata=meta(self._name, args.namespace, self.labels),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # No `replicas`: the HorizontalPodAutoscaler owns the replica count.
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_surge="25%", max_unavailable=0),
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=self.labels,
                        annotations={
                            "kuma.io/gateway": "enabled",
                            # Lua modules load at start: a changed plugin must restart the pods.
                            "checksum/plugins": plugins_checksum(
                                {path: files for _config_map, path, files in lua_sources(args)}
                            ),
                        },
                    ),
                    spec=self._pod_spec(
                        container,
                        sidecars=True,
                        termination_grace_period_seconds=args.config.termination_grace_seconds,
                        topology_spread_constraints=spread_over_zones_and_nodes(selector),
                    ),
                ),
            ),
            opts=child(self, depends_on),
        )

    # -- network ------------------------------------------------------------------------------

    def _service(
        self,
        role: str,
        selector: dict[str, str],
        ports: list[tuple[str, int, str]],
        service_type: str = "ClusterIP",
        annotations: Mapping[str, str] | None = None,
        external_traffic_policy: str | None = None,
        source_ranges: list[str] | None = None,
        extra_labels: Mapping[str, str] | None = None,
    ) -> k8s.core.v1.Service:
        return k8s.core.v1.Service(
            f"{self._name}-{role}",
            metadata=meta(
                f"{self._name}-{role}", self._args.namespace, {**self.labels, **(extra_labels or {})}, annotations
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type=service_type,
                selector=selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(name=port_name, port=port, target_port=target, protocol="TCP")
                    for port_name, port, target in ports
                ],
                external_traffic_policy=external_traffic_policy,
                load_balancer_source_ranges=source_ranges,
            ),
            opts=child(self),
        )

    def _network_policy(self, selector: dict[str, str]) -> None:
        port = k8s.networking.v1.NetworkPolicyPortArgs
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-network-policy",
            metadata=meta(self._name, self._args.namespace, self.labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                policy_types=["Ingress"],
                ingress=[
                    # Client traffic, from anywhere.
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        ports=[port(port=PROXY_PORT, protocol="TCP"), port(port=PROXY_TLS_PORT, protocol="TCP")]
                    ),
                    # The admin API: only the ingress controller.
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        ports=[port(port=ADMIN_TLS_PORT, protocol="TCP")],
                        from_=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(self._args.admin_clients))
                            )
                        ],
                    ),
                    # Health and metrics (Kong's and its sidecars'), from inside the cluster.
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        ports=[port(port=n, protocol="TCP") for n in [STATUS_PORT, *self._args.sidecar_ports]],
                        from_=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=k8s.meta.v1.LabelSelectorArgs())
                        ],
                    ),
                ],
            ),
            opts=child(self),
        )


def _load_balancer_address(status: k8s.core.v1.outputs.ServiceStatus | None) -> str:
    """The proxy's external address once the load balancer has one; empty before that."""
    ingress = (status.load_balancer.ingress if status and status.load_balancer else None) or []
    return (ingress[0].hostname or ingress[0].ip or "") if ingress else ""
