"""The composition: one explicit Kubernetes provider and the platform's components, in the
order of ARCHITECTURE.md. Every environment difference comes from the validated config; this
module only maps config models to component Args and wires the components together."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cert_manager import CertManager, CertManagerArgs
from components.elasticsearch import Elasticsearch, ElasticsearchArgs, Writer
from components.k8s import HelmChart, ObjectDefaults, Protection, Resources, set_object_defaults
from components.kong_apis import EdgeSpec
from components.kong_controller import (
    AdmissionWebhookSpec,
    KongIngressController,
    KongIngressControllerArgs,
    controller_selector,
)
from components.kong_gateway import (
    KongGateway,
    gateway_selector,
)
from components.logging import Logging, LoggingArgs
from components.models.base import HelmReleaseConfig, quantity_value
from components.models.cluster import ClusterConfig
from components.monitoring import Monitoring, MonitoringArgs, ScrapeTarget
from components.namespaces import NamespaceSpec, PlatformNamespaces, PlatformNamespacesArgs
from components.policy_engine import catalogue_config_map
from components.postgres import BackupSpec, PostgresCluster, PostgresClusterArgs
from components.service_mesh import (
    MESH_NAME,
    Permission,
    Resilience,
    ServiceMesh,
    ServiceMeshArgs,
    Workload,
    allow_from,
)
from components.tracing import (
    COLLECTOR,
    OTLP_GRPC_PORT,
    ElasticsearchStorage,
    Tracing,
    TracingArgs,
)
from stacks.catalogue import CatalogueContext, backend_workload, build_catalogue, catalogue_permissions
from stacks.config import PlatformConfig
from stacks.gateway import KONG, catalogue_policy, kong_args, kong_workload, policy_engine
from stacks.secrets import StackSecrets


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
        resources=Resources.of(cfg.resources),
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
    return PostgresClusterArgs(
        namespace=cfg.namespaces.database.name,
        cluster_name=pg.cluster_name,
        image=pg.image,
        instances=pg.instances,
        database=pg.database,
        owner=pg.owner,
        storage_size=pg.storage_size,
        storage_class=pg.storage_class,
        resources=Resources.of(pg.resources),
        parameters={
            "max_connections": str(pg.max_connections),
            "shared_buffers": f"{memory_mib // 4}MB",
            "effective_cache_size": f"{memory_mib * 3 // 4}MB",
        },
        synchronous_replicas=pg.synchronous_replicas,
        required_anti_affinity=cfg.is_prod,
        pooler=pg.pooler,
        backup=backup,
        pod_monitor=pg.pod_monitor,
        client_namespaces=[cfg.namespaces.gateway.name],
        operator=to_chart(pg.operator, cfg, owns_data=True),
        barman_plugin=to_chart(pg.barman_plugin, cfg, owns_data=True),
        protection=Protection.of(cfg.protection),
        depends_on=list(depends_on or []),
    )


LOG_WRITER, TRACE_WRITER = "fluent-bit", "jaeger"  # Elasticsearch users of the log and trace shippers


def scrapers(cfg: PlatformConfig) -> list[Workload]:
    monitoring = cfg.mesh.monitoring_namespace
    return [Workload("monitoring", monitoring)] if monitoring else []


def mesh_permissions(cfg: PlatformConfig) -> list[Permission]:
    """Kong (and monitoring) to the platform's own catalogue, deny by default (see catalogue_permissions)."""
    return catalogue_permissions(cfg.catalogue.apis, [kong_workload(cfg)], scrapers(cfg))


def catalogue_context_output(cfg: PlatformConfig, issuer: str) -> dict[str, Any]:
    """What a team's catalogue stack reads from this stack (StackReference output catalogueContext)."""
    return {
        "environment": cfg.environment,
        "ingressClass": cfg.kong.controller.ingress_class,
        "issuer": issuer,
        "certificateDuration": cfg.cert_manager.certificate_duration,
        "renewBefore": cfg.cert_manager.renew_before,
        "meshNamespace": cfg.mesh.release.namespace,
        "meshName": MESH_NAME,
        # `from` entries a catalogue's permissions add: Kong to everything, monitoring to backends
        "gatewaySources": allow_from([kong_workload(cfg)]),
        "monitoringSources": allow_from(scrapers(cfg)),
        "catalogues": {c.name: list(c.namespaces) for c in cfg.catalogues},
        # where a catalogue's API policies go, and how its APIs reach OPA (None: no policy engine)
        "policy": {
            "namespace": cfg.namespaces.gateway.name,
            "port": cfg.policy.decision_port,
            "configMaps": {c.name: catalogue_config_map(KONG, c.name) for c in cfg.catalogues},
        }
        if cfg.policy.enabled
        else None,
    }


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
            config=es,
            ca_issuer=certificates.ca_issuer,
            writers=[Writer(LOG_WRITER, "log-writer", logs_ns), Writer(TRACE_WRITER, "trace-writer", ns)],
            operator=to_chart(es.operator, cfg, owns_data=True),
            protection=Protection.of(cfg.protection),
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
            *(
                [ScrapeTarget("kong-opa", gateway_ns, gateway_selector(KONG), "opa-diagnostic")]
                if cfg.policy.enabled
                else []
            ),
        ],
        prometheus_labels=mon.prometheus_labels,
        latency_p95_ms=mon.latency_p95_ms,
        availability_percent=mon.availability_percent,
        certificate_expiry_days=mon.certificate_expiry_days,
        # the slowest an API lets OPA be before it answers 503
        policy_decision_timeout_s=max((a.policy.timeout_ms for a in cfg.catalogue.policed if a.policy), default=100)
        / 1000
        if cfg.policy.enabled
        else None,
        depends_on=after,
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
            protection=Protection.of(cfg.protection),
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
    policy = policy_engine(cfg, in_namespaces) if cfg.policy.enabled else None
    gateway = KongGateway(KONG, kong_args(cfg, database, mesh, policy), in_namespaces)
    controller_cfg = cfg.kong.controller
    controller = KongIngressController(
        "kong-controller",
        KongIngressControllerArgs(
            namespace=cfg.namespaces.gateway.name,
            image=controller_cfg.image,
            replicas=controller_cfg.replicas,
            ingress_class=controller_cfg.ingress_class,
            resources=Resources.of(controller_cfg.resources),
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
    issuer = certificates.issuer(cfg.cert_manager.issuer)
    apis = build_catalogue(
        catalogue,
        CatalogueContext(
            ingress_class=ingress_class,
            issuer=issuer,
            certificate_duration=cfg.cert_manager.certificate_duration,
            renew_before=cfg.cert_manager.renew_before,
            protection=Protection.of(cfg.protection),
            consumers_namespace=cfg.namespaces.gateway.name,
            edge=EdgeSpec(
                ip_allow_list=list(catalogue.edge.ip_allow_list),
                ip_deny_list=list(catalogue.edge.ip_deny_list),
                bot_deny_user_agents=list(catalogue.edge.bot_deny_user_agents),
                global_plugins=tracing.kong_plugins,
            ),
            policy=catalogue_policy(cfg),
            depends_on=[*controller.ready, *certificates.ready],
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
        **apis.outputs(),
        "catalogueContext": catalogue_context_output(cfg, issuer),
    }
