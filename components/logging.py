"""Logging: Fluent Bit (pinned chart, DaemonSet) shipping container logs to Elasticsearch.

Kong writes its access log as JSON on stdout; the kubernetes filter merges JSON log lines into
the record. Output to Elasticsearch 8/9 over TLS verified against the platform CA, as a
least-privilege writer, `Suppress_Type_Name On`, daily `logs-*` indices (deleted by the ILM
policy after their retention).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.k8s import HelmChart, app_labels, child, custom_resource, helm_release, meta

CA_TRUST_SECRET = "platform-ca-trust"  # noqa: S105 - a Secret's name


@dataclass(frozen=True)
class LoggingArgs:
    namespace: str
    release: HelmChart | None
    elasticsearch_host: str
    credentials_secret: str  # username, password (in this namespace)
    ca_issuer: str
    depends_on: list[pulumi.Resource] = field(default_factory=list)


def fluent_bit_config(es_host: str) -> dict[str, str]:
    return {
        "inputs": (
            "[INPUT]\n    Name tail\n    Path /var/log/containers/*.log\n    multiline.parser docker, cri\n"
            "    Tag kube.*\n    Mem_Buf_Limit 50MB\n    Skip_Long_Lines On\n"
        ),
        "filters": (
            "[FILTER]\n    Name kubernetes\n    Match kube.*\n    Merge_Log On\n    Keep_Log Off\n"
            "    K8S-Logging.Parser On\n    K8S-Logging.Exclude On\n"
        ),
        "outputs": (
            f"[OUTPUT]\n    Name es\n    Match kube.*\n    Host {es_host}\n    Port 9200\n"
            "    HTTP_User ${ES_USERNAME}\n    HTTP_Passwd ${ES_PASSWORD}\n"
            "    tls On\n    tls.verify On\n    tls.ca_file /fluent-bit/platform-ca/ca.crt\n"
            "    Suppress_Type_Name On\n    Logstash_Format On\n    Logstash_Prefix logs\n"
            "    Replace_Dots On\n    Retry_Limit False\n"
        ),
    }


class Logging(pulumi.ComponentResource):
    def __init__(self, name: str, args: LoggingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:observability:Logging", name, None, opts)
        labels = app_labels("fluent-bit", "logging")
        # Any certificate the platform CA signs carries the CA in ca.crt: this one exists for that.
        trust = custom_resource(
            f"{name}-ca-trust",
            "cert-manager.io/v1",
            "Certificate",
            meta(CA_TRUST_SECRET, args.namespace, labels),
            {
                "secretName": CA_TRUST_SECRET,
                "commonName": "fluent-bit",
                "usages": ["client auth"],
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "issuerRef": {"name": args.ca_issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
            },
            child(self, args.depends_on),
        )
        if args.release:
            secret = {"secretKeyRef": {"name": args.credentials_secret}}
            values = {
                "kind": "DaemonSet",
                "config": fluent_bit_config(args.elasticsearch_host),
                "env": [
                    {
                        "name": "ES_USERNAME",
                        "valueFrom": {"secretKeyRef": {**secret["secretKeyRef"], "key": "username"}},
                    },
                    {
                        "name": "ES_PASSWORD",
                        "valueFrom": {"secretKeyRef": {**secret["secretKeyRef"], "key": "password"}},
                    },
                ],
                "extraVolumes": [{"name": "platform-ca", "secret": {"secretName": CA_TRUST_SECRET}}],
                "extraVolumeMounts": [
                    {"name": "platform-ca", "mountPath": "/fluent-bit/platform-ca", "readOnly": True}
                ],
                "resources": args.release.resources_dict,
                "podLabels": {"kuma.io/sidecar-injection": "disabled"},
            }
            helm_release(
                f"{name}-fluent-bit", "fluent-bit", args.release, values, child(self, [*args.depends_on, trust])
            )
        self.register_outputs({})
