"""KongIngressController: the Kong Ingress Controller as its own small Deployment.

In PostgreSQL mode one controller writes Kong's configuration through the admin API and every
gateway pod reads it from the database, so the controller runs leader-elected with a standby,
not as a sidecar in each of up to 50 gateway pods. Also: its RBAC, the `kong` IngressClass, a
PodDisruptionBudget and (optionally) Kong's CRDs from a pinned upstream file.
"""

from __future__ import annotations

from dataclasses import dataclass

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

CONTROLLER_NAME = "kong-ingress-controller"
CONTROLLER_CLASS = "ingress-controllers.konghq.com/kong"
CONTROLLER_USER = 65532  # distroless nonroot
HEALTH_PORT = 10254
METRICS_PORT = 10255


def controller_selector() -> dict[str, str]:
    """The controller pods' selector labels (the gateway's NetworkPolicy admits these)."""
    return selector_labels(app_labels(CONTROLLER_NAME, "controller"))


@dataclass(frozen=True)
class KongIngressControllerArgs:
    namespace: str
    image: str
    replicas: int
    ingress_class: str
    resources: Resources
    admin_url: pulumi.Input[str]
    publish_service: str  # namespace/name of the proxy Service
    crds_url: str | None = None  # install Kong's CRDs from this pinned file when set


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> k8s.rbac.v1.PolicyRuleArgs:
    return k8s.rbac.v1.PolicyRuleArgs(api_groups=groups, resources=resources, verbs=verbs)


READ = ["get", "list", "watch"]
CLUSTER_RULES = [
    _rule([""], ["services", "secrets", "configmaps", "endpoints", "pods", "nodes", "namespaces"], READ),
    _rule([""], ["events"], ["create", "patch"]),
    _rule(["discovery.k8s.io"], ["endpointslices"], READ),
    _rule(["networking.k8s.io"], ["ingresses", "ingressclasses"], READ),
    _rule(["networking.k8s.io"], ["ingresses/status"], ["get", "patch", "update"]),
    _rule(["configuration.konghq.com"], ["*"], READ),
    _rule(["configuration.konghq.com"], ["*/status"], ["get", "patch", "update"]),
    _rule(["gateway.networking.k8s.io"], ["*"], READ),
    _rule(["gateway.networking.k8s.io"], ["*/status"], ["get", "patch", "update"]),
    _rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], READ),
]
LEADER_ELECTION_RULES = [
    _rule(["coordination.k8s.io"], ["leases"], ["get", "list", "watch", "create", "update", "patch", "delete"]),
    _rule([""], ["configmaps"], ["get", "list", "watch", "create", "update", "patch", "delete"]),
]


class KongIngressController(pulumi.ComponentResource):
    def __init__(self, name: str, args: KongIngressControllerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:kong:KongIngressController", name, None, opts)
        ns = args.namespace
        labels = app_labels(CONTROLLER_NAME, "controller")
        selector = selector_labels(labels)

        self.crds: pulumi.Resource | None = None
        if args.crds_url:
            self.crds = k8s.yaml.v2.ConfigFile(f"{name}-crds", file=args.crds_url, opts=child(self))

        account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account", metadata=meta(CONTROLLER_NAME, ns, labels), opts=child(self)
        )
        subject = k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=CONTROLLER_NAME, namespace=ns)
        cluster_role = k8s.rbac.v1.ClusterRole(
            f"{name}-cluster-role",
            metadata=meta(f"{ns}-{CONTROLLER_NAME}", labels=labels),
            rules=CLUSTER_RULES,
            opts=child(self),
        )
        cluster_binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-cluster-role-binding",
            metadata=meta(f"{ns}-{CONTROLLER_NAME}", labels=labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=cluster_role.metadata.name
            ),
            subjects=[subject],
            opts=child(self),
        )
        role = k8s.rbac.v1.Role(
            f"{name}-leader-election-role",
            metadata=meta(f"{CONTROLLER_NAME}-leader-election", ns, labels),
            rules=LEADER_ELECTION_RULES,
            opts=child(self),
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-leader-election-binding",
            metadata=meta(f"{CONTROLLER_NAME}-leader-election", ns, labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name
            ),
            subjects=[subject],
            opts=child(self),
        )
        self.ingress_class = k8s.networking.v1.IngressClass(
            f"{name}-ingress-class",
            metadata=meta(
                args.ingress_class, labels=labels, annotations={"ingressclass.kubernetes.io/is-default-class": "false"}
            ),
            spec=k8s.networking.v1.IngressClassSpecArgs(controller=CONTROLLER_CLASS),
            opts=child(self),
        )

        env = {
            "CONTROLLER_KONG_ADMIN_URL": args.admin_url,
            # Kong's admin listener uses its self-signed default certificate; the NetworkPolicy
            # restricts who can reach it.
            "CONTROLLER_KONG_ADMIN_TLS_SKIP_VERIFY": "true",
            "CONTROLLER_PUBLISH_SERVICE": args.publish_service,
            "CONTROLLER_INGRESS_CLASS": args.ingress_class,
            "CONTROLLER_ELECTION_ID": f"{CONTROLLER_NAME}-leader",
            "CONTROLLER_ELECTION_NAMESPACE": ns,
            "CONTROLLER_LOG_FORMAT": "json",
            "CONTROLLER_ANONYMOUS_REPORTS": "false",
            "CONTROLLER_ADMISSION_WEBHOOK_LISTEN": "off",
            "CONTROLLER_HEALTH_PROBE_BIND_ADDRESS": f"0.0.0.0:{HEALTH_PORT}",
            "CONTROLLER_METRICS_BIND_ADDRESS": f"0.0.0.0:{METRICS_PORT}",
        }
        field_env = [
            k8s.core.v1.EnvVarArgs(
                name=variable,
                value_from=k8s.core.v1.EnvVarSourceArgs(field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path=path)),
            )
            for variable, path in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace"))
        ]
        health = k8s.core.v1.HTTPGetActionArgs
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta(CONTROLLER_NAME, ns, labels),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=args.replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=account.metadata.name,
                        security_context=restricted_pod_security(CONTROLLER_USER),
                        topology_spread_constraints=spread_over_zones_and_nodes(selector),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="ingress-controller",
                                image=args.image,
                                env=[k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in sorted(env.items())]
                                + field_env,
                                ports=[
                                    k8s.core.v1.ContainerPortArgs(name="health", container_port=HEALTH_PORT),
                                    k8s.core.v1.ContainerPortArgs(name="metrics", container_port=METRICS_PORT),
                                ],
                                liveness_probe=k8s.core.v1.ProbeArgs(
                                    http_get=health(path="/healthz", port="health"), period_seconds=10
                                ),
                                readiness_probe=k8s.core.v1.ProbeArgs(
                                    http_get=health(path="/readyz", port="health"), period_seconds=10
                                ),
                                resources=args.resources.args(),
                                security_context=restricted_container_security(CONTROLLER_USER),
                            )
                        ],
                    ),
                ),
            ),
            opts=child(self, [cluster_binding, binding, *([self.crds] if self.crds else [])]),
        )
        # The controller only dials out (API server, Kong's admin API); it accepts health checks and scrapes.
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=meta(CONTROLLER_NAME, ns, labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                policy_types=["Ingress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        ports=[
                            k8s.networking.v1.NetworkPolicyPortArgs(port=HEALTH_PORT, protocol="TCP"),
                            k8s.networking.v1.NetworkPolicyPortArgs(port=METRICS_PORT, protocol="TCP"),
                        ],
                        from_=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=k8s.meta.v1.LabelSelectorArgs())
                        ],
                    )
                ],
            ),
            opts=child(self),
        )
        if args.replicas > 1:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=meta(CONTROLLER_NAME, ns, labels),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    min_available=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector)
                ),
                opts=child(self),
            )
        # What Kong configuration objects must wait for: Kong's CRDs (when installed here) and the class.
        self.ready: list[pulumi.Resource] = [self.ingress_class, *([self.crds] if self.crds else [])]
        self.register_outputs({"ingress_class": args.ingress_class})
