"""CertManager: cert-manager (pinned release, CRDs on) and the platform's ClusterIssuers.

A self-signed bootstrap issuer signs the platform's internal CA certificate; the CA
ClusterIssuer signs internal certificates; an ACME (Let's Encrypt) ClusterIssuer solving HTTP-01
through Kong's ingress class is added when an email is configured. Issuers wait for the release
(its webhook must answer before they can be created).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.k8s import HelmChart, child, custom_resource, helm_release, meta
from components.namespaces import NamespaceSpec, namespace_labels

CERT_MANAGER_API = "cert-manager.io/v1"
SELF_SIGNED_ISSUER = "platform-selfsigned"
CA_ISSUER = "platform-ca"
ACME_ISSUER = "letsencrypt"


def cert_manager_values(release: HelmChart) -> dict[str, object]:
    """The controller, the webhook and the CA injector: each with the release's replicas, resources
    and, when replicated, a PodDisruptionBudget."""
    deployment = {
        "replicaCount": release.replicas or 1,
        "resources": release.resources_dict,
        "podDisruptionBudget": {"enabled": release.highly_available, "minAvailable": 1},
    }
    return {
        "crds": {"enabled": True, "keep": True},
        "startupapicheck": {"enabled": True},  # waits until the webhook answers
        **deployment,
        "webhook": deployment,
        "cainjector": deployment,
        "prometheus": {"enabled": True},
    }


@dataclass(frozen=True)
class CertManagerArgs:
    namespace: str
    release: HelmChart | None
    ingress_class: str
    acme_email: str | None = None
    acme_server: str = "https://acme-v02.api.letsencrypt.org/directory"


class CertManager(pulumi.ComponentResource):
    ca_issuer: str
    acme_issuer: str | None

    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:tls:CertManager", name, None, opts)
        labels = {"app.kubernetes.io/part-of": "api-platform", "app.kubernetes.io/component": "tls"}
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=meta(args.namespace, labels={**labels, **namespace_labels(NamespaceSpec(args.namespace))}),
            opts=child(self),
        )
        owners: list[pulumi.Resource] = [namespace]
        if args.release:
            owners.append(
                helm_release(
                    f"{name}-release",
                    "cert-manager",
                    args.release,
                    cert_manager_values(args.release),
                    child(self, [namespace]),
                )
            )
        issuer_opts = child(self, owners)
        # What a Certificate elsewhere must wait for: the CRDs (the release) and its namespace.
        self.ready: list[pulumi.Resource] = list(owners)

        self_signed = custom_resource(
            f"{name}-selfsigned-issuer",
            CERT_MANAGER_API,
            "ClusterIssuer",
            meta(SELF_SIGNED_ISSUER, labels=labels),
            {"selfSigned": {}},
            issuer_opts,
        )
        ca_secret = "platform-root-ca"  # noqa: S105 - a Secret's name
        ca = custom_resource(
            f"{name}-root-ca",
            CERT_MANAGER_API,
            "Certificate",
            meta(ca_secret, args.namespace, labels),
            {
                "isCA": True,
                "commonName": "api-platform internal CA",
                "secretName": ca_secret,
                "duration": "87600h",
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "issuerRef": {"name": SELF_SIGNED_ISSUER, "kind": "ClusterIssuer", "group": "cert-manager.io"},
            },
            child(self, [*owners, self_signed]),
        )
        custom_resource(
            f"{name}-ca-issuer",
            CERT_MANAGER_API,
            "ClusterIssuer",
            meta(CA_ISSUER, labels=labels),
            {"ca": {"secretName": ca_secret}},
            child(self, [*owners, ca]),
        )
        self.ca_issuer = CA_ISSUER
        self.acme_issuer = None
        if args.acme_email:
            custom_resource(
                f"{name}-acme-issuer",
                CERT_MANAGER_API,
                "ClusterIssuer",
                meta(ACME_ISSUER, labels=labels),
                {
                    "acme": {
                        "server": args.acme_server,
                        "email": args.acme_email,
                        "privateKeySecretRef": {"name": f"{ACME_ISSUER}-account"},
                        "solvers": [{"http01": {"ingress": {"ingressClassName": args.ingress_class}}}],
                    }
                },
                issuer_opts,
            )
            self.acme_issuer = ACME_ISSUER
        self.register_outputs({"ca_issuer": self.ca_issuer, "acme_issuer": self.acme_issuer})

    def issuer(self, kind: str) -> str:
        """The ClusterIssuer for `internal-ca` or `letsencrypt`."""
        if kind == "letsencrypt":
            if self.acme_issuer is None:
                raise ValueError("the letsencrypt issuer needs an ACME email")
            return self.acme_issuer
        return self.ca_issuer
