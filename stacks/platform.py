"""The composition: one explicit Kubernetes provider and the platform's components, in the
order of ARCHITECTURE.md. Every environment difference comes from the validated config; this
module only maps config models to component Args and wires the components together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cert_manager import CertManager, CertManagerArgs
from components.elasticsearch import Elasticsearch, ElasticsearchArgs, Writer
from components.k8s import HelmChart, ObjectDefaults, Protection, Resources, set_object_defaults
from components.kong_apis import AiRoutingSpec, ApiSpec, ExternalUpstreamSpec, KongApis, KongApisArgs
from components.kong_consumers import ConsumerSpec, JwtKey, KongConsumers, KongConsumersArgs
from components.kong_controller import (
    AdmissionWebhookSpec,
    KongIngressController,
    KongIngressControllerArgs,
    controller_selector,
)
from components.kong_gateway import (
    AutoscalingSpec,
    DatabaseConnection,
    KongGateway,
    KongGatewayArgs,
    ProxyServiceSpec,
    gateway_selector,
)
from components.logging import Logging, LoggingArgs
from components.monitoring import Monitoring, MonitoringArgs, ScrapeTarget
from components.namespaces import NamespaceSpec, PlatformNamespaces, PlatformNamespacesArgs
from components.pinned_hosts import PinnedHosts, PinnedHostsArgs, PinnedHostSpec, pinned_secret_name
from components.postgres import BackupSpec, PoolerSpec, PostgresCluster, PostgresClusterArgs
from components.service_mesh import Permission, Resilience, ServiceMesh, ServiceMeshArgs, Workload
from components.tracing import (
    COLLECTOR,
    OTLP_GRPC_PORT,
    ElasticsearchStorage,
    Tracing,
    TracingArgs,
    kong_tracing_env,
)
from stacks.config import (
    ApiConfig,
    BackendKey,
    ClusterConfig,
    HelmReleaseConfig,
    PlatformConfig,
    ResourcesConfig,
    quantity_value,
)
from stacks.secrets import StackSecrets

PLUGINS_DIR = Path(__file__).resolve().parent.parent / "kong-plugins"


def custom_plugins() -> dict[str, dict[str, str]]:
    """The Lua plugins shipped with the platform: kong-plugins/<name>/{handler,schema}.lua."""
    return {
        plugin.name: {f.name: f.read_text() for f in sorted(plugin.glob("*.lua"))}
        for plugin in sorted(PLUGINS_DIR.iterdir())
        if (plugin / "handler.lua").exists()
    }


def provider_annotations(cluster: ClusterConfig) -> dict[str, str]:
    """Annotations that change how the Kubernetes provider applies, waits for and deletes objects.

    The stack is authoritative for every field it declares: a value someone changed behind its back
    (`kubectl scale`, `kubectl edit`) is another field manager's, and server-side apply would stop
    at that conflict. patchForce takes the field back, so `pulumi up --refresh` restores drift.
    """
    annotations = {"pulumi.com/patchForce": "true"}
    if cluster.skip_await:
        annotations["pulumi.com/skipAwait"] = "true"
    if cluster.deletion_propagation:
        annotations["pulumi.com/deletionPropagationPolicy"] = cluster.deletion_propagation
    return annotations


def kubernetes_provider(cluster: ClusterConfig) -> k8s.Provider:
    return k8s.Provider(
        "kubernetes",
        context=cluster.context,
        kubeconfig=cluster.kubeconfig_path,
        enable_server_side_apply=True,
    )


def to_resources(cfg: ResourcesConfig) -> Resources:
    return Resources(cfg.requests.cpu, cfg.requests.memory, cfg.limits.cpu, cfg.limits.memory)


def protection(cfg: PlatformConfig) -> Protection:
    return Protection(cfg.protection.protect, cfg.protection.retain_on_delete)


def to_chart(cfg: HelmReleaseConfig, platform: PlatformConfig, owns_data: bool = False) -> HelmChart | None:
    """The release to install, or None when this stack does not install operators. A release that
    `owns_data` installs the CRDs of stateful objects: it is protected with them."""
    if not (cfg.enabled and platform.install_operators):
        return None
    path = platform.local_chart(cfg)
    return HelmChart(
        cfg.chart,
        cfg.version,
        cfg.repository,
        cfg.namespace,
        cfg.values,
        path=str(path) if path else None,
        replicas=cfg.replicas,
        resources=to_resources(cfg.resources),
        protect=owns_data and platform.protection.protect,
    )


def postgres_args(
    cfg: PlatformConfig, secrets: StackSecrets, depends_on: list[pulumi.Resource] | None = None
) -> PostgresClusterArgs:
    pg = cfg.postgres
    memory_mib = int(quantity_value(pg.resources.limits.memory) / 2**20)
    backup = None
    if pg.backup.enabled:
        backup = BackupSpec(
            destination_path=pg.backup.destination_path,
            schedule=pg.backup.schedule,
            retention=pg.backup.retention,
            endpoint_url=pg.backup.endpoint_url,
            credentials_secret=pg.backup.credentials_secret,
            access_key_id=secrets.backup_access_key_id,
            secret_access_key=secrets.backup_secret_access_key,
        )
    pooler = None
    if pg.pooler.enabled:
        pooler = PoolerSpec(
            instances=pg.pooler.instances,
            pool_mode=pg.pooler.pool_mode,
            max_client_conn=pg.pooler.max_client_conn,
            default_pool_size=pg.pooler.default_pool_size,
            resources=to_resources(pg.pooler.resources),
        )
    return PostgresClusterArgs(
        namespace=cfg.namespaces.database.name,
        cluster_name=pg.cluster_name,
        image=pg.image,
        instances=pg.instances,
        database=pg.database,
        owner=pg.owner,
        storage_size=pg.storage_size,
        storage_class=pg.storage_class,
        resources=to_resources(pg.resources),
        parameters={
            "max_connections": str(pg.max_connections),
            "shared_buffers": f"{memory_mib // 4}MB",
            "effective_cache_size": f"{memory_mib * 3 // 4}MB",
        },
        synchronous_replicas=pg.synchronous_replicas,
        required_anti_affinity=cfg.is_prod,
        pooler=pooler,
        backup=backup,
        pod_monitor=pg.pod_monitor,
        client_namespaces=[cfg.namespaces.gateway.name],
        operator=to_chart(pg.operator, cfg, owns_data=True),
        barman_plugin=to_chart(pg.barman_plugin, cfg, owns_data=True),
        protection=protection(cfg),
        depends_on=list(depends_on or []),
    )


def edge_env(cfg: PlatformConfig) -> dict[str, str]:
    """Client IPs behind the load balancer, and nginx timeouts that shed slow clients."""
    edge = cfg.catalogue.edge
    return {
        "KONG_TRUSTED_IPS": ",".join(cfg.catalogue.trusted_ips),
        "KONG_REAL_IP_HEADER": cfg.catalogue.real_ip_header,
        "KONG_REAL_IP_RECURSIVE": "on",
        "KONG_NGINX_HTTP_CLIENT_HEADER_TIMEOUT": f"{edge.client_header_timeout_s}s",
        "KONG_NGINX_HTTP_CLIENT_BODY_TIMEOUT": f"{edge.client_body_timeout_s}s",
        "KONG_NGINX_HTTP_KEEPALIVE_TIMEOUT": "60s",
        "KONG_NGINX_HTTP_LARGE_CLIENT_HEADER_BUFFERS": "4 16k",
    }


def api_spec(api: ApiConfig) -> ApiSpec:
    routing = None
    if api.ai_routing:
        routing = AiRoutingSpec(
            header=api.ai_routing.header,
            body_field=api.ai_routing.body_field,
            routes=[r.model_dump() for r in api.ai_routing.routes],
            fallback=[f.model_dump() for f in api.ai_routing.fallback],
        )
    external = api.backend.external
    return ApiSpec(
        name=api.name,
        hosts=list(api.hosts),
        paths=list(api.paths),
        namespace=api.backend.namespace,
        selector=dict(api.backend.selector) if api.backend.selector else None,
        external=ExternalUpstreamSpec(external.host, list(external.ca_certificates), external.verify_depth)
        if external
        else None,
        port=api.backend.port,
        health_path=api.backend.health_path,
        auth=api.auth,
        oidc=api.oidc.model_dump() if api.oidc else None,
        allowed_groups=list(api.allowed_groups),
        scopes=list(api.scopes),
        rate_limit=api.rate_limit.model_dump(exclude_none=True),
        retries=api.retries,
        connect_timeout_ms=api.connect_timeout_ms,
        read_timeout_ms=api.read_timeout_ms,
        write_timeout_ms=api.write_timeout_ms,
        max_body_mb=api.max_body_mb,
        ai_routing=routing,
    )


KONG = "kong"  # the KongGateway's name: its objects and pod labels derive from it
LOG_WRITER, TRACE_WRITER = "fluent-bit", "jaeger"  # Elasticsearch users of the log and trace shippers


def backend_workload(api: ApiConfig) -> Workload:
    """The data planes of an API's backend in the mesh, named after the API."""
    return Workload(api.name, api.backend.namespace, api.backend.selector or {})


def mesh_permissions(cfg: PlatformConfig) -> list[Permission]:
    """Deny by default; allow exactly what the catalogue implies.

    One permission per distinct backend (namespace and selector), named after the first API routed
    to it: APIs that share a backend (versions, extra paths) share its permission.
    """
    kong = Workload(KONG, cfg.namespaces.gateway.name, gateway_selector(KONG))
    monitoring = cfg.mesh.monitoring_namespace
    scrapers = [Workload("monitoring", monitoring)] if monitoring else []

    backends: dict[BackendKey, Workload] = {}
    for api in cfg.catalogue.apis:
        if api.backend.selector:  # an external backend is outside the mesh
            backends.setdefault(api.backend.workload, backend_workload(api))
    callers: dict[BackendKey, list[Workload]] = {key: [] for key in backends}
    by_name = cfg.catalogue.by_name
    for caller in cfg.catalogue.apis:
        for called in caller.backend.calls:  # both in the mesh (stacks.config checks)
            caller_workload = backends[caller.backend.workload]
            sources = callers[by_name[called].backend.workload]
            if caller_workload not in sources:
                sources.append(caller_workload)
    permissions = [Permission(backend, [kong, *callers[key], *scrapers]) for key, backend in backends.items()]
    ai_targets = {
        (target.host, target.port)
        for api in cfg.catalogue.apis
        if api.ai_routing
        for target in api.ai_routing.targets()
    }
    for host, port in sorted(ai_targets):
        service, namespace = host.split(".")[:2]
        upstream = Workload(f"{service}-{port}", service_tag=f"{service}_{namespace}_svc_{port}")
        permissions.append(Permission(upstream, [kong]))
    return permissions


def collector_address(cfg: PlatformConfig) -> str:
    """The platform's OpenTelemetry Collector, OTLP/gRPC (the Tracing component names its Service)."""
    return f"{COLLECTOR}.{cfg.namespaces.observability.name}.svc:{OTLP_GRPC_PORT}"


def mesh_args(cfg: PlatformConfig) -> ServiceMeshArgs:
    mesh = cfg.mesh
    defaults = Resilience(mesh.retry.model_dump(), mesh.timeout.model_dump(), mesh.circuit_breaker.model_dump())
    apis = cfg.catalogue.by_name
    overrides = [
        (
            backend_workload(apis[o.api]),
            Resilience(
                (o.retry or mesh.retry).model_dump(),
                (o.timeout or mesh.timeout).model_dump(),
                (o.circuit_breaker or mesh.circuit_breaker).model_dump(),
            ),
        )
        for o in mesh.overrides
    ]
    return ServiceMeshArgs(
        namespace=mesh.release.namespace,
        release=to_chart(mesh.release, cfg),
        mtls_mode=mesh.mtls_mode,
        certificate_rotation=mesh.certificate_rotation,
        ca_expiration=mesh.ca_expiration,
        permissions=mesh_permissions(cfg),
        defaults=defaults,
        overrides=overrides,
        tracing_sampling_percent=mesh.tracing_sampling_percent,
        tracing_endpoint=mesh.tracing_endpoint or collector_address(cfg),
        access_log=mesh.access_log,
        rate_limit=mesh.rate_limit.model_dump() if mesh.rate_limit else None,
        cni=mesh.cni,
    )


def observability(
    cfg: PlatformConfig, certificates: CertManager, after: list[pulumi.Resource], opts: pulumi.ResourceOptions
) -> tuple[Elasticsearch, Tracing]:
    """Elasticsearch, then Jaeger + the collector, then Fluent Bit."""
    obs = cfg.observability
    es, ns, logs_ns = obs.elasticsearch, cfg.namespaces.observability.name, cfg.namespaces.logging.name
    search = Elasticsearch(
        "elasticsearch",
        ElasticsearchArgs(
            namespace=ns,
            name=es.name,
            version=es.version,
            nodes=es.nodes,
            dedicated_masters=es.dedicated_masters,
            resources=to_resources(es.resources),
            heap=es.heap,
            storage_size=es.storage_size,
            storage_class=es.storage_class,
            ca_issuer=certificates.ca_issuer,
            writers=[Writer(LOG_WRITER, "log-writer", logs_ns), Writer(TRACE_WRITER, "trace-writer", ns)],
            log_retention_days=es.log_retention_days,
            trace_retention_days=es.trace_retention_days,
            kibana=es.kibana,
            operator=to_chart(es.operator, cfg, owns_data=True),
            protection=protection(cfg),
            depends_on=[*after, *certificates.ready],
        ),
        opts,
    )
    storage = None
    if obs.tracing.storage == "elasticsearch":
        storage = ElasticsearchStorage(
            search.url, TRACE_WRITER, search.writer_secrets[TRACE_WRITER], search.http_certificate_secret
        )
    tracing = Tracing(
        "tracing",
        TracingArgs(
            namespace=ns,
            jaeger=to_chart(obs.tracing.jaeger, cfg),
            collector=to_chart(obs.tracing.collector, cfg),
            collector_image=obs.tracing.collector_image,
            sampling_rate=obs.tracing.sampling_rate,
            storage=storage,
            depends_on=[search],
        ),
        opts,
    )
    Logging(
        "logging",
        LoggingArgs(
            namespace=logs_ns,
            release=to_chart(obs.logging.release, cfg),
            elasticsearch_host=f"{search.http_service}.{ns}.svc",
            credentials_secret=search.writer_secrets[LOG_WRITER],
            ca_issuer=certificates.ca_issuer,
            depends_on=[search, tracing, *certificates.ready],
        ),
        opts,
    )
    return search, tracing


def monitoring_args(cfg: PlatformConfig, after: list[pulumi.Resource]) -> MonitoringArgs:
    mon, gateway_ns = cfg.observability.monitoring, cfg.namespaces.gateway.name
    return MonitoringArgs(
        namespace=cfg.namespaces.observability.name,
        targets=[
            ScrapeTarget(
                "kong", gateway_ns, {**gateway_selector(KONG), "enable-metrics": "true"}, "status", service=True
            ),
            ScrapeTarget("kong-ingress-controller", gateway_ns, controller_selector(), "metrics"),
            ScrapeTarget(
                "kuma-control-plane", cfg.mesh.release.namespace, {"app": "kuma-control-plane"}, "diagnostics"
            ),
        ],
        prometheus_labels=mon.prometheus_labels,
        latency_p95_ms=mon.latency_p95_ms,
        availability_percent=mon.availability_percent,
        certificate_expiry_days=mon.certificate_expiry_days,
        depends_on=after,
    )


def kong_args(cfg: PlatformConfig, database: PostgresCluster, mesh: ServiceMesh) -> KongGatewayArgs:
    kong = cfg.kong
    return KongGatewayArgs(
        namespace=cfg.namespaces.gateway.name,
        image=kong.image,
        database=DatabaseConnection(
            host=database.pooler_host or database.rw_host,
            ro_host=database.ro_host,
            database=cfg.postgres.database,
            secret=database.client_secret_name,
        ),
        resources=to_resources(kong.resources),
        autoscaling=AutoscalingSpec(
            min_replicas=kong.autoscaling.min_replicas,
            max_replicas=kong.autoscaling.max_replicas,
            target_cpu_utilization=kong.autoscaling.target_cpu_utilization,
            scale_up_stabilization_seconds=kong.autoscaling.scale_up_stabilization_seconds,
            scale_down_stabilization_seconds=kong.autoscaling.scale_down_stabilization_seconds,
        ),
        admin_clients=controller_selector(),
        nginx_worker_processes=kong.nginx_worker_processes,
        pg_pool_size=kong.pg_pool_size,
        pg_ro_pool_size=kong.pg_ro_pool_size,
        mem_cache_size=kong.mem_cache_size,
        max_unavailable=kong.max_unavailable,
        readiness_failover_tolerance_seconds=kong.readiness_failover_tolerance_seconds,
        termination_grace_seconds=kong.termination_grace_seconds,
        proxy=ProxyServiceSpec(
            type=kong.proxy.type,
            annotations=kong.proxy.annotations,
            external_traffic_policy=kong.proxy.external_traffic_policy,
            load_balancer_source_ranges=list(kong.proxy.load_balancer_source_ranges),
        ),
        extra_env={**edge_env(cfg), **kong_tracing_env(cfg.observability.tracing.sampling_rate)},
        custom_plugins=custom_plugins(),
        # The mesh's injector must be ready before Kong's pods start, or they run without sidecars.
        depends_on=[database, mesh],
    )


def build_platform(cfg: PlatformConfig, secrets: StackSecrets) -> dict[str, Any]:
    """Register every resource of the stack; returns the stack outputs."""
    set_object_defaults(ObjectDefaults(labels=dict(cfg.labels), annotations=provider_annotations(cfg.cluster)))
    provider = kubernetes_provider(cfg.cluster)
    on_cluster = pulumi.ResourceOptions(providers=[provider])

    # PostgreSQL's and Elasticsearch's data volumes live in these: deleting one deletes them.
    stateful_namespaces = {cfg.namespaces.database.name, cfg.namespaces.observability.name}
    namespaces = PlatformNamespaces(
        "platform",
        PlatformNamespacesArgs(
            namespaces=[
                NamespaceSpec(
                    name=ns.name,
                    pod_security=ns.pod_security,
                    mesh_injection=ns.mesh_injection,
                    stateful=ns.name in stateful_namespaces,
                )
                for ns in cfg.namespaces.all()
            ],
            protection=protection(cfg),
        ),
        on_cluster,
    )
    in_namespaces = pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[namespaces]))
    ingress_class = cfg.kong.controller.ingress_class

    certificates = CertManager(
        "cert-manager",
        CertManagerArgs(
            namespace=cfg.cert_manager.release.namespace,
            release=to_chart(cfg.cert_manager.release, cfg),
            ingress_class=ingress_class,
            acme_email=cfg.cert_manager.acme_email,
            acme_server=cfg.cert_manager.acme_server,
        ),
        on_cluster,
    )
    # The Barman Cloud plugin needs cert-manager.
    database = PostgresCluster("postgres", postgres_args(cfg, secrets, [certificates]), in_namespaces)
    mesh = ServiceMesh("mesh", mesh_args(cfg), on_cluster)
    search, tracing = observability(cfg, certificates, [mesh], in_namespaces)
    gateway = KongGateway(KONG, kong_args(cfg, database, mesh), in_namespaces)
    controller_cfg = cfg.kong.controller
    controller = KongIngressController(
        "kong-controller",
        KongIngressControllerArgs(
            namespace=cfg.namespaces.gateway.name,
            image=controller_cfg.image,
            replicas=controller_cfg.replicas,
            ingress_class=controller_cfg.ingress_class,
            resources=to_resources(controller_cfg.resources),
            admin_url=gateway.admin_url,
            publish_service=gateway.proxy_service_name,
            crds_source=controller_cfg.crds_source if controller_cfg.install_crds and cfg.install_operators else None,
            webhook=AdmissionWebhookSpec(controller_cfg.admission_webhook.failure_policy, certificates.ca_issuer)
            if controller_cfg.admission_webhook.enabled
            else None,
            certificates_ready=certificates.ready,
        ),
        pulumi.ResourceOptions.merge(in_namespaces, pulumi.ResourceOptions(depends_on=[gateway])),
    )
    catalogue = cfg.catalogue
    pinned = PinnedHosts(
        "pinned-hosts",
        PinnedHostsArgs(
            hosts=[
                PinnedHostSpec(
                    p.host,
                    list(p.keys),
                    sorted({api.backend.namespace for api in catalogue.apis if p.host in api.hosts}),
                )
                for p in catalogue.pinned_hosts
            ],
            issuer=certificates.issuer(cfg.cert_manager.issuer),
            certificate_duration=cfg.cert_manager.certificate_duration,
            renew_before=cfg.cert_manager.renew_before,
            protection=protection(cfg),
            depends_on=certificates.ready,
        ),
        in_namespaces,
    )
    KongApis(
        "apis",
        KongApisArgs(
            apis=[api_spec(api) for api in catalogue.apis],
            ingress_class=ingress_class,
            issuer=certificates.issuer(cfg.cert_manager.issuer),
            certificate_duration=cfg.cert_manager.certificate_duration,
            renew_before=cfg.cert_manager.renew_before,
            rate_limit_policy=catalogue.rate_limit_policy,
            redis_host=catalogue.redis_host,
            oauth2_token_ttl_s=catalogue.oauth2_token_ttl_s,
            ip_allow_list=list(catalogue.edge.ip_allow_list),
            ip_deny_list=list(catalogue.edge.ip_deny_list),
            bot_deny_user_agents=list(catalogue.edge.bot_deny_user_agents),
            global_plugins=[tracing.kong_plugin],
            pinned_tls={p.host: pinned_secret_name(p.host, p.keys[0]) for p in catalogue.pinned_hosts},
            depends_on=[*controller.ready, *certificates.ready, pinned],
        ),
        in_namespaces,
    )
    consumers = KongConsumers(
        "consumers",
        KongConsumersArgs(
            namespace=cfg.namespaces.gateway.name,
            ingress_class=ingress_class,
            consumers=[
                ConsumerSpec(
                    username=c.username,
                    groups=list(c.groups),
                    jwt_keys=[JwtKey(k.issuer, k.public_key) for k in c.jwt_keys],
                    generate_jwt_key=c.generate_jwt_key,
                    api_key_rotations=list(c.api_key_rotations),
                    oauth2_client=c.oauth2_client,
                )
                for c in catalogue.consumers
            ],
            protection=protection(cfg),
            depends_on=controller.ready,
        ),
        in_namespaces,
    )
    Monitoring("monitoring", monitoring_args(cfg, [gateway, controller, mesh, search]), in_namespaces)

    return {
        "environment": cfg.environment,
        "namespaces": namespaces.names,
        "proxyAddress": gateway.proxy_address,
        "proxyService": gateway.proxy_service_name,
        "databaseEndpoints": {
            "readWrite": database.rw_host,
            "readOnly": database.ro_host,
            "pooler": database.pooler_host,
        },
        "databaseCredentialsSecret": pulumi.Output.concat(cfg.namespaces.database.name, "/", database.app_secret_name),
        "kongDatabaseSecret": f"{cfg.namespaces.gateway.name}/{database.client_secret_name}",
        "apiHosts": sorted({host for api in catalogue.apis for host in api.hosts}),
        "jaegerUrl": tracing.query_url,
        "elasticsearchUrl": search.url,
        "kibanaUrl": f"https://{cfg.observability.elasticsearch.name}-kb-http.{cfg.namespaces.observability.name}.svc:5601"
        if cfg.observability.elasticsearch.kibana
        else None,
        "metrics": f"http://{KONG}-status.{cfg.namespaces.gateway.name}.svc:8100/metrics",
        "consumerApiKeys": pulumi.Output.secret(consumers.api_keys),
        "consumerOauth2Clients": pulumi.Output.secret(consumers.oauth2_clients),
        "consumerJwtPrivateKeys": pulumi.Output.secret(consumers.jwt_private_keys),
        # What clients pin for the pinned hosts: the served key and every key's pin-sha256.
        "gatewayPins": pinned.pins,
    }
