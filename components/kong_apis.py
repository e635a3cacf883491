"""KongApis: the API catalogue as Kubernetes objects that the Kong Ingress Controller reconciles.

Per API: one Service (the platform's own, selecting the backend pods, carrying Kong's retries,
timeouts, upstream policy and mesh settings) and one Ingress (hosts, paths, TLS, plugins).
Plugins and upstream policies are shared: an object is named after a hash of its content, so
APIs with the same settings in a namespace reuse it and the object count stays flat as the
catalogue grows. A per-namespace Certificate covers the namespace's hosts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.k8s import app_labels, child, custom_resource, meta
from components.kong_resources import KONG_API, KongObject, kong_plugin

GATEWAY_TLS_SECRET = "gateway-tls"  # noqa: S105 - a Secret's name


@dataclass(frozen=True)
class AiRoutingSpec:
    header: str
    body_field: str | None
    routes: list[dict[str, Any]]
    fallback: list[dict[str, Any]]


@dataclass(frozen=True)
class ApiSpec:
    name: str
    hosts: list[str]
    paths: list[str]
    namespace: str
    selector: Mapping[str, str]
    port: int
    auth: str  # jwt | key-auth | oauth2 | none
    rate_limit: Mapping[str, int]  # second / minute / hour
    health_path: str = "/healthz"
    allowed_groups: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    retries: int = 2
    connect_timeout_ms: int = 2000
    read_timeout_ms: int = 60000
    write_timeout_ms: int = 60000
    max_body_mb: int = 8
    ai_routing: AiRoutingSpec | None = None


@dataclass(frozen=True)
class KongApisArgs:
    apis: list[ApiSpec]
    ingress_class: str
    issuer: str  # ClusterIssuer of the gateway certificates
    certificate_duration: str = "2160h"
    renew_before: str = "720h"
    rate_limit_policy: str = "local"
    redis_host: str | None = None
    oauth2_token_ttl_s: int = 3600
    ip_allow_list: list[str] = field(default_factory=list)
    ip_deny_list: list[str] = field(default_factory=list)
    bot_deny_user_agents: list[str] = field(default_factory=list)
    # Gateway-wide plugins other capabilities configure (tracing): (plugin, config).
    global_plugins: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    depends_on: list[pulumi.Resource] = field(default_factory=list)


def content_name(prefix: str, content: Any) -> str:
    """A stable object name for shared content: `prefix-<8 hex of its canonical JSON>`."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:8]
    return f"{prefix}-{digest}"


def auth_plugin(api: ApiSpec, token_ttl_s: int) -> tuple[str, dict[str, Any]] | None:
    if api.auth == "jwt":
        return "jwt", {
            "key_claim_name": "iss",
            "claims_to_verify": ["exp"],
            "maximum_expiration": 3600,
            "header_names": ["authorization"],
            "run_on_preflight": False,
        }
    if api.auth == "key-auth":
        return "key-auth", {"key_names": ["apikey", "x-api-key"], "hide_credentials": True, "key_in_body": False}
    if api.auth == "oauth2":
        return "oauth2", {
            "enable_client_credentials": True,
            "enable_authorization_code": False,
            "enable_implicit_grant": False,
            "enable_password_grant": False,
            "global_credentials": True,
            "scopes": list(api.scopes) or None,
            "mandatory_scope": bool(api.scopes),
            "token_expiration": token_ttl_s,
            "hide_credentials": True,
        }
    return None


def api_plugins(api: ApiSpec, args: KongApisArgs) -> list[tuple[str, dict[str, Any]]]:
    """(plugin, config) for one API, in the order they are listed on its Ingress."""
    plugins = []
    auth = auth_plugin(api, args.oauth2_token_ttl_s)
    if auth:
        plugins.append(auth)
    if api.allowed_groups:
        plugins.append(("acl", {"allow": sorted(api.allowed_groups), "hide_groups_header": True}))
    # Kong runs one rate-limiting instance per request: by client IP where nobody is
    # authenticated, by consumer where everybody is.
    limit: dict[str, Any] = {
        **{window: value for window, value in sorted(api.rate_limit.items())},
        "limit_by": "ip" if api.auth == "none" else "consumer",
        "policy": args.rate_limit_policy,
        "fault_tolerant": True,
    }
    if args.rate_limit_policy == "redis":
        limit["redis"] = {"host": args.redis_host, "port": 6379}
    plugins.append(("rate-limiting", limit))
    plugins.append(("request-size-limiting", {"allowed_payload_size": api.max_body_mb, "size_unit": "megabytes"}))
    if api.ai_routing:
        routing = api.ai_routing
        plugins.append(
            (
                "ai-router",
                {
                    "header": routing.header,
                    "body_field": routing.body_field,
                    "routes": routing.routes,
                    "fallback": routing.fallback,
                },
            )
        )
    return plugins


class KongApis(pulumi.ComponentResource):
    def __init__(self, name: str, args: KongApisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:kong:KongApis", name, None, opts)
        self._name, self._args = name, args
        labels = app_labels("api-catalogue", "routing")
        shared: dict[tuple[str, str], pulumi.Resource] = {}  # (namespace, object name) -> object
        deps = child(self, args.depends_on)

        def share(namespace: str, object_name: str, build: Any) -> str:
            if (namespace, object_name) not in shared:
                shared[(namespace, object_name)] = build()
            return object_name

        hosts_by_namespace: dict[str, list[str]] = {}
        for api in args.apis:
            ns = api.namespace
            hosts_by_namespace.setdefault(ns, [])
            hosts_by_namespace[ns] += [h for h in api.hosts if h not in hosts_by_namespace[ns]]

            plugin_names = []
            for plugin, raw_config in api_plugins(api, args):
                config = {k: v for k, v in raw_config.items() if v is not None}
                object_name = content_name(plugin, config)
                plugin_names.append(
                    share(
                        ns,
                        object_name,
                        lambda p=plugin, c=config, o=object_name, n=ns: kong_plugin(
                            f"{name}-{n}-{o}", meta(o, n, labels), p, c, deps
                        ),
                    )
                )

            upstream = {
                "healthchecks": {
                    "active": {
                        "type": "http",
                        "httpPath": api.health_path,
                        "healthy": {"interval": 5, "successes": 2},
                        "unhealthy": {"interval": 5, "httpFailures": 3, "tcpFailures": 3, "timeouts": 3},
                    },
                    # Passive checks are the circuit breaker: failing targets are ejected.
                    "passive": {
                        "healthy": {"successes": 5},
                        "unhealthy": {"httpFailures": 5, "tcpFailures": 3, "timeouts": 5},
                    },
                },
                "algorithm": "round-robin",
            }
            upstream_name = content_name("upstream", upstream)
            share(
                ns,
                upstream_name,
                lambda u=upstream, o=upstream_name, n=ns: custom_resource(
                    f"{name}-{n}-{o}", f"{KONG_API}/v1beta1", "KongUpstreamPolicy", meta(o, n, labels), u, deps
                ),
            )

            service_name = f"api-{api.name}"
            k8s.core.v1.Service(
                f"{name}-{api.name}-service",
                metadata=meta(
                    service_name,
                    ns,
                    labels,
                    {
                        "konghq.com/upstream-policy": upstream_name,
                        "konghq.com/retries": str(api.retries),
                        "konghq.com/connect-timeout": str(api.connect_timeout_ms),
                        "konghq.com/read-timeout": str(api.read_timeout_ms),
                        "konghq.com/write-timeout": str(api.write_timeout_ms),
                        # Send traffic to the Service address so the mesh sidecar balances it with mTLS.
                        "ingress.kubernetes.io/service-upstream": "true",
                    },
                ),
                spec=k8s.core.v1.ServiceSpecArgs(
                    selector=dict(api.selector),
                    ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port=api.port, protocol="TCP")],
                ),
                opts=deps,
            )
            k8s.networking.v1.Ingress(
                f"{name}-{api.name}-ingress",
                metadata=meta(
                    f"api-{api.name}",
                    ns,
                    labels,
                    {
                        "konghq.com/plugins": ",".join(plugin_names),
                        "konghq.com/protocols": "https",
                        "konghq.com/https-redirect-status-code": "308",
                        "konghq.com/strip-path": "false",
                    },
                ),
                spec=k8s.networking.v1.IngressSpecArgs(
                    ingress_class_name=args.ingress_class,
                    tls=[k8s.networking.v1.IngressTLSArgs(hosts=list(api.hosts), secret_name=GATEWAY_TLS_SECRET)],
                    rules=[
                        k8s.networking.v1.IngressRuleArgs(
                            host=host,
                            http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                                paths=[
                                    k8s.networking.v1.HTTPIngressPathArgs(
                                        path=path,
                                        path_type="Prefix",
                                        backend=k8s.networking.v1.IngressBackendArgs(
                                            service=k8s.networking.v1.IngressServiceBackendArgs(
                                                name=service_name,
                                                port=k8s.networking.v1.ServiceBackendPortArgs(number=80),
                                            )
                                        ),
                                    )
                                    for path in api.paths
                                ]
                            ),
                        )
                        for host in api.hosts
                    ],
                ),
                opts=child(self, [*args.depends_on, *shared.values()]),
            )

        self.global_plugins = self._global_plugins(deps)
        for ns, hosts in hosts_by_namespace.items():
            custom_resource(
                f"{name}-{ns}-certificate",
                "cert-manager.io/v1",
                "Certificate",
                meta(GATEWAY_TLS_SECRET, ns, labels),
                {
                    "secretName": GATEWAY_TLS_SECRET,
                    "dnsNames": hosts,
                    "duration": args.certificate_duration,
                    "renewBefore": args.renew_before,
                    "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                    "issuerRef": {"name": args.issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
                },
                deps,
            )
        self.register_outputs({"apis": [api.name for api in args.apis]})

    def _global_plugins(self, opts: pulumi.ResourceOptions) -> list[KongObject]:
        """Gateway-wide KongClusterPlugins (label global): request ids, metrics, DDoS guards."""
        args = self._args
        labels = {**app_labels("api-catalogue", "routing"), "global": "true"}
        annotations = {"kubernetes.io/ingress.class": args.ingress_class}
        plugins: list[tuple[str, dict[str, Any]]] = [
            (
                "correlation-id",
                {"header_name": "X-Correlation-ID", "generator": "uuid#counter", "echo_downstream": True},
            ),
            # Carry a request id too: keep the client's X-Request-ID, else reuse the correlation id.
            ("request-transformer", {"add": {"headers": ['X-Request-ID:$(headers["x-correlation-id"])']}}),
            (
                "prometheus",
                {
                    "status_code_metrics": True,
                    "latency_metrics": True,
                    "bandwidth_metrics": True,
                    "upstream_health_metrics": True,
                    "per_consumer": False,
                },
            ),
            ("bot-detection", {"deny": list(args.bot_deny_user_agents)}),
        ]
        if args.ip_allow_list or args.ip_deny_list:
            restriction: dict[str, Any] = {"status": 403, "message": "Forbidden"}
            if args.ip_allow_list:
                restriction["allow"] = list(args.ip_allow_list)
            if args.ip_deny_list:
                restriction["deny"] = list(args.ip_deny_list)
            plugins.append(("ip-restriction", restriction))
        plugins += args.global_plugins
        return [
            kong_plugin(
                f"{self._name}-global-{plugin}",
                meta(f"global-{plugin}", labels=labels, annotations=annotations),
                plugin,
                config,
                opts,
                cluster_wide=True,
            )
            for plugin, config in plugins
        ]
