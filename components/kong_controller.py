"""KongIngressController: the Kong Ingress Controller as its own small Deployment.

In PostgreSQL mode one controller writes Kong's configuration through the admin API and every
gateway pod reads it from the database, so the controller runs leader-elected with a standby,
not as a sidecar in each of up to 50 gateway pods. Also: its RBAC, the `kong` IngressClass, a
PodDisruptionBudget and (optionally) Kong's CRDs from a pinned upstream file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.k8s import (
    Resources,
    app_labels,
    child,
    custom_resource,
    meta,
    restricted_container_security,
    restricted_pod_security,
    selector_labels,
    spread_over_zones_and_nodes,
)

CONTROLLER_NAME = "kong-ingress-controller"
WEBHOOK_NAME = f"{CONTROLLER_NAME}-webhook"  # its Service, Certificate and Secret
WEBHOOK_PORT = 8080
WEBHOOK_CERT_DIR = "/admission-webhook"
KONG_RESOURCES = ["kongplugins", "kongclusterplugins", "kongconsumers", "kongconsumergroups", "kongvaults"]
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
    crds_source: str | None = None  # install Kong's CRDs from this pinned URL or local file when set
    webhook: AdmissionWebhookSpec | None = None  # the validating admission webhook, when set
    # What the webhook's Certificate waits for: cert-manager's release (its CRDs), when installed.
    certificates_ready: list[pulumi.Resource] = field(default_factory=list)


@dataclass(frozen=True)
class AdmissionWebhookSpec:
    failure_policy: str  # Fail | Ignore, for Kong's resources and credential Secrets
    ca_issuer: str  # the ClusterIssuer of the webhook's serving certificate


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
        if args.crds_source:
            self.crds = k8s.yaml.v2.ConfigFile(f"{name}-crds", file=args.crds_source, opts=child(self))

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
            "CONTROLLER_ADMISSION_WEBHOOK_LISTEN": f"0.0.0.0:{WEBHOOK_PORT}" if args.webhook else "off",
            "CONTROLLER_HEALTH_PROBE_BIND_ADDRESS": f"0.0.0.0:{HEALTH_PORT}",
            "CONTROLLER_METRICS_BIND_ADDRESS": f"0.0.0.0:{METRICS_PORT}",
        }
        if args.webhook:
            env["CONTROLLER_ADMISSION_WEBHOOK_CERT_FILE"] = f"{WEBHOOK_CERT_DIR}/tls.crt"
            env["CONTROLLER_ADMISSION_WEBHOOK_KEY_FILE"] = f"{WEBHOOK_CERT_DIR}/tls.key"
        certificate = (
            self._webhook_certificate(name, ns, args.webhook, args.certificates_ready) if args.webhook else None
        )
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
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="webhook-certificate",
                                secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=WEBHOOK_NAME),
                            )
                        ]
                        if args.webhook
                        else None,
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="ingress-controller",
                                image=args.image,
                                env=[k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in sorted(env.items())]
                                + field_env,
                                ports=[
                                    k8s.core.v1.ContainerPortArgs(name="health", container_port=HEALTH_PORT),
                                    k8s.core.v1.ContainerPortArgs(name="metrics", container_port=METRICS_PORT),
                                    *(
                                        [k8s.core.v1.ContainerPortArgs(name="webhook", container_port=WEBHOOK_PORT)]
                                        if args.webhook
                                        else []
                                    ),
                                ],
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(
                                        name="webhook-certificate", mount_path=WEBHOOK_CERT_DIR, read_only=True
                                    )
                                ]
                                if args.webhook
                                else None,
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
            opts=child(
                self,
                [
                    cluster_binding,
                    binding,
                    *([self.crds] if self.crds else []),
                    *([certificate] if certificate else []),
                ],
            ),
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
                    ),
                    # Admission reviews come from the API server, which is not a pod.
                    *(
                        [
                            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                                ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=WEBHOOK_PORT, protocol="TCP")]
                            )
                        ]
                        if args.webhook
                        else []
                    ),
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
        # What Kong configuration objects must wait for: Kong's CRDs (when installed here), the class
        # and the admission webhook, so the first install is validated too.
        self.ready: list[pulumi.Resource] = [self.ingress_class, *([self.crds] if self.crds else [])]
        if args.webhook:
            self.ready.append(self._webhook(name, ns, args.webhook, labels, selector))
        self.register_outputs({"ingress_class": args.ingress_class})

    def _webhook_certificate(
        self, name: str, namespace: str, webhook: AdmissionWebhookSpec, after: list[pulumi.Resource]
    ) -> pulumi.Resource:
        """The webhook's serving certificate, from the platform CA (cert-manager renews it)."""
        service = f"{WEBHOOK_NAME}.{namespace}.svc"
        return custom_resource(
            f"{name}-webhook-certificate",
            "cert-manager.io/v1",
            "Certificate",
            meta(WEBHOOK_NAME, namespace, app_labels(CONTROLLER_NAME, "controller")),
            {
                "secretName": WEBHOOK_NAME,
                "dnsNames": [WEBHOOK_NAME, f"{WEBHOOK_NAME}.{namespace}", service],
                "duration": "2160h",
                "renewBefore": "720h",
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "issuerRef": {"name": webhook.ca_issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
            },
            child(self, after),
        )

    def _webhook(
        self, name: str, namespace: str, spec: AdmissionWebhookSpec, labels: dict[str, str], selector: dict[str, str]
    ) -> pulumi.Resource:
        """The Service in front of the controllers' admission server, and the webhook configuration.

        cert-manager's CA injector writes the CA into the configuration; the provider waits for it
        (`pulumi.com/waitFor`), so nothing Kong validates is applied before the webhook can answer.
        """
        service = k8s.core.v1.Service(
            f"{name}-webhook-service",
            metadata=meta(WEBHOOK_NAME, namespace, labels),
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=selector,
                ports=[k8s.core.v1.ServicePortArgs(name="webhook", port=443, target_port="webhook", protocol="TCP")],
            ),
            opts=child(self),
        )
        client = {"service": {"name": WEBHOOK_NAME, "namespace": namespace, "path": "/", "port": 443}}

        def webhook(
            hook: str, rules: list[dict[str, object]], failure_policy: str, **extra: object
        ) -> dict[str, object]:
            return {
                "name": f"{hook}.validation.ingress-controller.konghq.com",
                "clientConfig": client,
                "rules": rules,
                "failurePolicy": failure_policy,
                "matchPolicy": "Equivalent",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10,
                **extra,
            }

        def rule(group: str, version: str, resources: list[str]) -> dict[str, object]:
            return {
                "apiGroups": [group],
                "apiVersions": [version],
                "operations": ["CREATE", "UPDATE"],
                "resources": resources,
            }

        policy = spec.failure_policy
        return k8s.admissionregistration.v1.ValidatingWebhookConfiguration(
            f"{name}-webhook",
            metadata=meta(
                f"{namespace}-{CONTROLLER_NAME}",
                labels=labels,
                annotations={
                    "cert-manager.io/inject-ca-from": f"{namespace}/{WEBHOOK_NAME}",
                    "pulumi.com/waitFor": "jsonpath={.webhooks[0].clientConfig.caBundle}",
                },
            ),
            webhooks=[
                webhook("kong-configuration", [rule("configuration.konghq.com", "*", KONG_RESOURCES)], policy),
                webhook(
                    "secrets.credentials",
                    [rule("", "v1", ["secrets"])],
                    policy,
                    objectSelector={"matchExpressions": [{"key": "konghq.com/credential", "operator": "Exists"}]},
                ),
                # Every Ingress and Service of the cluster: never block them when the controller is down.
                webhook(
                    "routing",
                    [rule("networking.k8s.io", "v1", ["ingresses"]), rule("", "v1", ["services"])],
                    "Ignore",
                ),
            ],
            opts=child(self, [self.deployment, service]),
        )
