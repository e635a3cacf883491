"""KongApis: the API catalogue as Kubernetes objects that the Kong Ingress Controller reconciles.

Per API: one Service (the platform's own, carrying Kong's retries, timeouts and upstream policy)
and one Ingress (hosts, paths, TLS, plugins). The Service selects the backend pods and sends
traffic through the mesh, or for an external backend names the upstream host, which Kong reaches
over TLS verified against the API's pinned CA certificates only. Plugins, upstream policies and
CA certificates are shared: an object is named after a hash of its content, so APIs with the same
settings in a namespace reuse it and the object count stays flat as the catalogue grows. A
per-namespace Certificate covers the namespace's hosts, except pinned hosts (see PinnedHosts).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.k8s import app_labels, child, custom_resource, meta
from components.kong_resources import KONG_API, KongObject, kong_plugin
from components.models.apis import ApiConfig
from components.models.catalogue import CatalogueConfig
from components.policy_engine import CataloguePolicy

GATEWAY_TLS_SECRET = "gateway-tls"  # noqa: S105 - a Secret's name


@dataclass(frozen=True)
class EdgeSpec:
    """The gateway-wide KongClusterPlugins: request ids, metrics and DDoS guards, plus what other
    capabilities configure (tracing). The platform stack's; a team's catalogue stack has none."""

    ip_allow_list: list[str] = field(default_factory=list)
    ip_deny_list: list[str] = field(default_factory=list)
    bot_deny_user_agents: list[str] = field(default_factory=list)
    global_plugins: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (plugin, config)


@dataclass(frozen=True)
class KongApisArgs:
    catalogue: CatalogueConfig  # the APIs, and how their limits are counted
    ingress_class: pulumi.Input[str]
    issuer: pulumi.Input[str]  # ClusterIssuer of the gateway certificates
    certificate_duration: pulumi.Input[str] = "2160h"
    renew_before: pulumi.Input[str] = "720h"
    edge: EdgeSpec | None = None
    # Hosts served with a key the program owns (PinnedHosts): host -> the served key's TLS Secret.
    pinned_tls: Mapping[str, str] = field(default_factory=dict)
    # How the catalogue's APIs with a policy ask the gateway's OPA (None: the platform runs none).
    policy: CataloguePolicy | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)


def content_name(prefix: str, content: Any) -> str:
    """A stable object name for shared content: `prefix-<8 hex of its canonical JSON>`."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:8]
    return f"{prefix}-{digest}"


def auth_plugin(api: ApiConfig, token_ttl_s: int) -> tuple[str, dict[str, Any]] | None:
    if api.auth == "jwt":
        return "jwt", {
            "key_claim_name": "iss",
            "claims_to_verify": ["exp"],
            "maximum_expiration": 3600,
            "header_names": ["authorization"],
            "run_on_preflight": False,
        }
    if api.auth == "oidc" and api.oidc:
        oidc = api.oidc.model_dump()
        if oidc["hide_credentials"] is None:
            oidc["hide_credentials"] = api.backend.external is not None
        return "oidc-jwt", oidc
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


def api_plugins(
    api: ApiConfig, catalogue: CatalogueConfig, policy: CataloguePolicy | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(plugin, config) for one API, in the order they are listed on its Ingress."""
    plugins = []
    auth = auth_plugin(api, catalogue.oauth2_token_ttl_s)
    if auth:
        plugins.append(auth)
    if api.allowed_groups:
        acl: dict[str, Any] = {"allow": sorted(api.allowed_groups), "hide_groups_header": True}
        if api.auth == "oidc":
            # The token's groups decide even when consumerClaim attaches a Kong consumer: Kong's
            # acl otherwise reads a consumer's own ACL groups and ignores the authenticated ones.
            acl["always_use_authenticated_groups"] = True
        plugins.append(("acl", acl))
    # Kong runs one rate-limiting instance per request: by client IP where nobody is
    # authenticated, by consumer where everybody is.
    limit: dict[str, Any] = {
        **dict(sorted(api.rate_limit.model_dump(exclude_none=True).items())),
        "limit_by": "ip" if api.auth == "none" else "consumer",
        "policy": catalogue.rate_limit_policy,
        "fault_tolerant": True,
    }
    if catalogue.rate_limit_policy == "redis":
        limit["redis"] = {"host": catalogue.redis_host, "port": 6379}
    plugins.append(("rate-limiting", limit))
    plugins.append(("request-size-limiting", {"allowed_payload_size": api.max_body_mb, "size_unit": "megabytes"}))
    if api.policy:
        if policy is None:
            raise ValueError(f"API {api.name} has a policy, but the platform runs no policy engine")
        plugins.append(("opa-authz", policy.plugin_config(api.name, api.policy)))
    if api.ai_routing:
        routing = api.ai_routing
        plugins.append(
            (
                "ai-router",
                {
                    "header": routing.header,
                    "body_field": routing.body_field,
                    "routes": [r.model_dump() for r in routing.routes],
                    "fallback": [f.model_dump() for f in routing.fallback],
                },
            )
        )
    return plugins


# Kong Ingress Controller annotations (internal/annotations/annotations.go, controller 3.4+ for TLS).
UPSTREAM_PROTOCOL = "konghq.com/protocol"
TLS_VERIFY = "konghq.com/tls-verify"
TLS_VERIFY_DEPTH = "konghq.com/tls-verify-depth"
CA_CERTIFICATES_SECRET = "konghq.com/ca-certificates-secret"  # noqa: S105 - an annotation name
HOST_HEADER = "konghq.com/host-header"
CA_CERT_LABEL = "konghq.com/ca-cert"  # the controller turns labelled Secrets into Kong CA certificates


def health_checks(api: ApiConfig) -> dict[str, Any]:
    """Passive checks are the circuit breaker (failing targets are ejected); in-cluster backends are
    also probed actively. An external upstream is not probed: its owner's health path is not ours."""
    checks: dict[str, Any] = {
        "passive": {
            "healthy": {"successes": 5},
            "unhealthy": {"httpFailures": 5, "tcpFailures": 3, "timeouts": 5},
        },
    }
    if api.backend.external is None:
        checks["active"] = {
            "type": "http",
            "httpPath": api.backend.health_path,
            "healthy": {"interval": 5, "successes": 2},
            "unhealthy": {"interval": 5, "httpFailures": 3, "tcpFailures": 3, "timeouts": 3},
        }
    return {"healthchecks": checks, "algorithm": "round-robin"}


def ca_certificate_id(pem: str) -> str:
    """The Kong CA certificate id of `pem`: stable across runs, the same wherever the same CA is used."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "api-platform:ca-certificate:" + pem.strip()))


class KongApis(pulumi.ComponentResource):
    def __init__(self, name: str, args: KongApisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:kong:KongApis", name, None, opts)
        self._name, self._args = name, args
        self._labels = app_labels("api-catalogue", "routing")
        self._shared: dict[tuple[str, str], pulumi.Resource] = {}  # (namespace, object name) -> object
        self._deps = child(self, args.depends_on)

        hosts_by_namespace: dict[str, list[str]] = {}
        for api in args.catalogue.apis:
            ns = api.backend.namespace
            hosts = hosts_by_namespace.setdefault(ns, [])
            hosts += [h for h in api.hosts if h not in hosts]
            plugin_names = [
                self._plugin(ns, plugin, config) for plugin, config in api_plugins(api, args.catalogue, args.policy)
            ]
            service = self._service(api)
            # The Ingress waits for what it names (its plugins, its Service), nothing more.
            self._ingress(api, plugin_names, [*(self._shared[(ns, p)] for p in plugin_names), service])

        self.global_plugins = self._global_plugins(args.edge) if args.edge else []
        for ns, hosts in hosts_by_namespace.items():
            served = [h for h in hosts if h not in args.pinned_tls]
            if not served:
                continue
            custom_resource(
                f"{name}-{ns}-certificate",
                "cert-manager.io/v1",
                "Certificate",
                meta(GATEWAY_TLS_SECRET, ns, self._labels),
                {
                    "secretName": GATEWAY_TLS_SECRET,
                    "dnsNames": served,
                    "duration": args.certificate_duration,
                    "renewBefore": args.renew_before,
                    "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                    "issuerRef": {"name": args.issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
                },
                self._deps,
            )
        self.register_outputs({"apis": [api.name for api in args.catalogue.apis]})

    def _share(self, namespace: str, object_name: str, build: Any) -> str:
        """`object_name`, building the object the first time the namespace needs it."""
        if (namespace, object_name) not in self._shared:
            self._shared[(namespace, object_name)] = build()
        return object_name

    def _plugin(self, ns: str, plugin: str, raw_config: Mapping[str, Any]) -> str:
        config = {k: v for k, v in raw_config.items() if v is not None}
        object_name = content_name(plugin, config)
        return self._share(
            ns,
            object_name,
            lambda: kong_plugin(
                f"{self._name}-{ns}-{object_name}", meta(object_name, ns, self._labels), plugin, config, self._deps
            ),
        )

    def _upstream_policy(self, api: ApiConfig) -> str:
        policy = health_checks(api)
        object_name = content_name("upstream", policy)
        return self._share(
            api.backend.namespace,
            object_name,
            lambda: custom_resource(
                f"{self._name}-{api.backend.namespace}-{object_name}",
                f"{KONG_API}/v1beta1",
                "KongUpstreamPolicy",
                meta(object_name, api.backend.namespace, self._labels),
                policy,
                self._deps,
            ),
        )

    def _ca_secret(self, ns: str, pem: str) -> str:
        """A CA certificate as the controller reads it: a labelled Secret with `cert` and `id`."""
        object_name = content_name("upstream-ca", pem.strip())
        return self._share(
            ns,
            object_name,
            lambda: k8s.core.v1.Secret(
                f"{self._name}-{ns}-{object_name}",
                metadata=meta(
                    object_name,
                    ns,
                    {**self._labels, CA_CERT_LABEL: "true"},
                    {"kubernetes.io/ingress.class": self._args.ingress_class},
                ),
                string_data={"cert": pem.strip() + "\n", "id": ca_certificate_id(pem)},
                opts=self._deps,
            ),
        )

    def _service(self, api: ApiConfig) -> k8s.core.v1.Service:
        annotations = {
            "konghq.com/upstream-policy": self._upstream_policy(api),
            "konghq.com/retries": str(api.retries),
            "konghq.com/connect-timeout": str(api.connect_timeout_ms),
            "konghq.com/read-timeout": str(api.read_timeout_ms),
            "konghq.com/write-timeout": str(api.write_timeout_ms),
        }
        if api.backend.external is None:
            # Send traffic to the Service address so the mesh sidecar balances it with mTLS.
            annotations["ingress.kubernetes.io/service-upstream"] = "true"
            spec = k8s.core.v1.ServiceSpecArgs(
                selector=dict(api.backend.selector or {}),
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port=api.backend.port, protocol="TCP")],
            )
        else:
            external = api.backend.external
            secrets = [self._ca_secret(api.backend.namespace, pem) for pem in external.ca_certificates]
            annotations |= {
                UPSTREAM_PROTOCOL: "https",
                TLS_VERIFY: "true",
                TLS_VERIFY_DEPTH: str(external.verify_depth),
                CA_CERTIFICATES_SECRET: ",".join(secrets),
                # The Host header, and with it the SNI and the name Kong verifies, is the upstream's.
                HOST_HEADER: external.host,
            }
            spec = k8s.core.v1.ServiceSpecArgs(
                type="ExternalName",
                external_name=external.host,
                ports=[k8s.core.v1.ServicePortArgs(name="https", port=api.backend.port, protocol="TCP")],
            )
        return k8s.core.v1.Service(
            f"{self._name}-{api.name}-service",
            metadata=meta(f"api-{api.name}", api.backend.namespace, self._labels, annotations),
            spec=spec,
            opts=self._deps,
        )

    def _ingress(self, api: ApiConfig, plugin_names: list[str], named: list[pulumi.Resource]) -> None:
        annotations = {
            "konghq.com/plugins": ",".join(plugin_names),
            "konghq.com/protocols": "https",
            "konghq.com/https-redirect-status-code": "308",
            "konghq.com/strip-path": "false",
        }
        if api.backend.external is not None:
            annotations["konghq.com/preserve-host"] = "false"  # the client's Host is not the upstream's name
        pinned = self._args.pinned_tls
        served = [h for h in api.hosts if h not in pinned]
        tls = [k8s.networking.v1.IngressTLSArgs(hosts=served, secret_name=GATEWAY_TLS_SECRET)] if served else []
        tls += [k8s.networking.v1.IngressTLSArgs(hosts=[h], secret_name=pinned[h]) for h in api.hosts if h in pinned]
        port = 80 if api.backend.external is None else api.backend.port
        k8s.networking.v1.Ingress(
            f"{self._name}-{api.name}-ingress",
            metadata=meta(f"api-{api.name}", api.backend.namespace, self._labels, annotations),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name=self._args.ingress_class,
                tls=tls,
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
                                            name=f"api-{api.name}",
                                            port=k8s.networking.v1.ServiceBackendPortArgs(number=port),
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
            opts=child(self, [*self._args.depends_on, *named]),
        )

    def _global_plugins(self, edge: EdgeSpec) -> list[KongObject]:
        """Gateway-wide KongClusterPlugins (label global): request ids, metrics, DDoS guards."""
        labels = {**self._labels, "global": "true"}
        annotations = {"kubernetes.io/ingress.class": self._args.ingress_class}
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
            ("bot-detection", {"deny": list(edge.bot_deny_user_agents)}),
        ]
        if edge.ip_allow_list or edge.ip_deny_list:
            restriction: dict[str, Any] = {"status": 403, "message": "Forbidden"}
            if edge.ip_allow_list:
                restriction["allow"] = list(edge.ip_allow_list)
            if edge.ip_deny_list:
                restriction["deny"] = list(edge.ip_deny_list)
            plugins.append(("ip-restriction", restriction))
        plugins += edge.global_plugins
        return [
            kong_plugin(
                f"{self._name}-global-{plugin}",
                meta(f"global-{plugin}", labels=labels, annotations=annotations),
                plugin,
                config,
                self._deps,
                cluster_wide=True,
            )
            for plugin, config in plugins
        ]
