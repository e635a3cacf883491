"""The gateway's part of the platform composition: Kong with its Lua plugins and edge settings,
and Open Policy Agent beside it (the policy engine every catalogue's APIs with a policy ask)."""

from __future__ import annotations

from pathlib import Path

import pulumi

from components.kong_controller import controller_selector
from components.kong_gateway import DatabaseConnection, KongGatewayArgs, gateway_selector
from components.models.policy import PLATFORM_CATALOGUE
from components.policy_engine import CataloguePolicy, PolicyEngine, PolicyEngineArgs, catalogue_config_map
from components.postgres import PostgresCluster
from components.service_mesh import ServiceMesh, Workload
from components.tracing import kong_tracing_env
from stacks.config import PlatformConfig
from stacks.policies import ROOT, api_rego, platform_rego

KONG = "kong"  # the KongGateway's name: its objects and pod labels derive from it


def kong_workload(cfg: PlatformConfig) -> Workload:
    return Workload(KONG, cfg.namespaces.gateway.name, gateway_selector(KONG))


PLUGINS_DIR = Path(__file__).resolve().parent.parent / "kong-plugins"


def custom_plugins() -> dict[str, dict[str, str]]:
    """The Lua plugins shipped with the platform: kong-plugins/<name>/{handler,schema}.lua."""
    return {
        plugin.name: {f.name: f.read_text() for f in sorted(plugin.glob("*.lua"))}
        for plugin in sorted(PLUGINS_DIR.iterdir())
        if (plugin / "handler.lua").exists()
    }


def lua_libraries() -> dict[str, dict[str, str]]:
    """The Lua libraries the plugins share: kong-plugins/lib/<name>/*.lua, required as <name>.<module>."""
    return {
        library.name: {f.name: f.read_text() for f in sorted(library.glob("*.lua"))}
        for library in sorted((PLUGINS_DIR / "lib").iterdir())
        if library.is_dir()
    }


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


def policy_engine(cfg: PlatformConfig, opts: pulumi.ResourceOptions) -> PolicyEngine:
    """OPA beside Kong, loading the platform's policy and every catalogue's (the platform's own too)."""
    return PolicyEngine(
        "policy",
        PolicyEngineArgs(
            namespace=cfg.namespaces.gateway.name,
            gateway=KONG,
            config=cfg.policy,
            rules={Path(f.path).name: f.source for f in platform_rego(cfg.policy.rules)},
            catalogues=[PLATFORM_CATALOGUE, *(c.name for c in cfg.catalogues)],
        ),
        opts,
    )


def catalogue_policy(cfg: PlatformConfig) -> CataloguePolicy | None:
    """How the platform's own catalogue asks OPA."""
    if not cfg.policy.enabled:
        return None
    return CataloguePolicy(
        catalogue=PLATFORM_CATALOGUE,
        namespace=cfg.namespaces.gateway.name,
        config_map=catalogue_config_map(KONG, PLATFORM_CATALOGUE),
        port=cfg.policy.decision_port,
        rules={f.package[2]: f.source for f in api_rego(cfg.catalogue, PLATFORM_CATALOGUE, ROOT) if f.package},
    )


def kong_args(
    cfg: PlatformConfig, database: PostgresCluster, mesh: ServiceMesh, policy: PolicyEngine | None
) -> KongGatewayArgs:
    return KongGatewayArgs(
        namespace=cfg.namespaces.gateway.name,
        config=cfg.kong,
        database=DatabaseConnection(
            host=database.pooler_host or database.rw_host,
            ro_host=database.ro_host,
            database=cfg.postgres.database,
            secret=database.client_secret_name,
        ),
        admin_clients=controller_selector(),
        extra_env={**edge_env(cfg), **kong_tracing_env(cfg.observability.tracing.sampling_rate)},
        custom_plugins=custom_plugins(),
        lua_libraries=lua_libraries(),
        sidecars=[policy.container()] if policy else [],
        sidecar_volumes=policy.volumes() if policy else [],
        sidecar_ports=[cfg.policy.diagnostic_port] if policy else [],
        # The mesh's injector must be ready before Kong's pods start, or they run without sidecars.
        depends_on=[database, mesh, *([policy] if policy else [])],
    )
