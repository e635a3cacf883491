"""PinnedHosts: gateway hosts whose serving keys clients may pin.

cert-manager makes a new private key at every renewal of the gateway's certificates
(rotationPolicy Always), which breaks any client that pins the gateway's key. For a pinned host
the program owns the keys instead: tls.PrivateKey resources (ECDSA P-256) kept in the stack's
encrypted state and protected in prod. Each key gets a Secret holding it as `tls.key` and a
Certificate with rotationPolicy Never, so cert-manager issues and renews certificates for that key
and never replaces it. The first key of a host is served (its Secret is the Ingresses' TLS
Secret); the others are backups, with certificates already issued, whose pins clients hold as
well. Rotating to a backup is reordering the keys: the Ingresses switch to a Secret that already
holds a valid pair, so no request sees a certificate without a pinned key.

A key's Secret is created Opaque with only `tls.key` (a `kubernetes.io/tls` Secret must also carry
`tls.crt`, which only cert-manager has). cert-manager keeps an existing Secret's type and adds
`tls.crt` and `ca.crt` under its own field manager; the Kong Ingress Controller reads a Secret's
`tls.crt` and `tls.key` whatever its type.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components.k8s import Protection, app_labels, child, custom_resource, meta
from components.models.catalogue import PinnedHostConfig
from components.pins import public_key_pin


def pinned_secret_name(host: str, key: str) -> str:
    """The Secret (and Certificate) of one key of a pinned host."""
    return f"pinned-{host}-{key}"


@dataclass(frozen=True)
class PinnedHostsArgs:
    hosts: list[PinnedHostConfig]  # key ids, the served key first
    namespaces: Mapping[str, list[str]]  # host -> where Ingresses serve it (a Secret is namespaced)
    issuer: pulumi.Input[str]  # ClusterIssuer
    certificate_duration: pulumi.Input[str] = "2160h"
    renew_before: pulumi.Input[str] = "720h"
    protection: Protection = field(default_factory=Protection)  # for the keys: losing one breaks clients
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class PinnedHosts(pulumi.ComponentResource):
    """Owned serving keys, their Secrets and Certificates; `pins` is what clients pin."""

    pins: dict[str, pulumi.Output[dict[str, object]]]

    def __init__(self, name: str, args: PinnedHostsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:kong:PinnedHosts", name, None, opts)
        labels = app_labels("gateway-tls", "pinned-host")
        deps = child(self, args.depends_on)
        self.pins = {}
        for spec in args.hosts:
            keys: dict[str, tls.PrivateKey] = {
                key_id: tls.PrivateKey(
                    f"{name}-{spec.host}-{key_id}",
                    algorithm="ECDSA",
                    ecdsa_curve="P256",
                    opts=child(self, protection=args.protection, retain=False),
                )
                for key_id in spec.keys
            }
            for ns in args.namespaces[spec.host]:
                for key_id, key in keys.items():
                    secret_name = pinned_secret_name(spec.host, key_id)
                    secret = k8s.core.v1.Secret(
                        f"{name}-{ns}-{spec.host}-{key_id}-secret",
                        metadata=meta(secret_name, ns, labels),
                        type="Opaque",
                        data={"tls.key": key.private_key_pem.apply(base64_text)},
                        opts=deps,
                    )
                    custom_resource(
                        f"{name}-{ns}-{spec.host}-{key_id}-certificate",
                        "cert-manager.io/v1",
                        "Certificate",
                        meta(secret_name, ns, labels),
                        {
                            "secretName": secret_name,
                            "dnsNames": [spec.host],
                            "duration": args.certificate_duration,
                            "renewBefore": args.renew_before,
                            # The key in the Secret is the one to certify, at every renewal.
                            "privateKey": {
                                "algorithm": "ECDSA",
                                "size": 256,
                                "encoding": "PKCS1",
                                "rotationPolicy": "Never",
                            },
                            "issuerRef": {"name": args.issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
                        },
                        child(self, [*args.depends_on, secret]),
                    )
            self.pins[spec.host] = host_pins(spec.keys, {k: key.public_key_pem for k, key in keys.items()})
        self.register_outputs({"pins": self.pins})


def host_pins(key_ids: list[str], public_keys: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[dict[str, object]]:
    """{"active": the served key id, "pins": {key id: pin-sha256}} in the keys' order."""

    def pins(pems: list[str]) -> dict[str, object]:
        return {"active": key_ids[0], "pins": {k: public_key_pin(pem) for k, pem in zip(key_ids, pems, strict=True)}}

    return pulumi.Output.all(*[public_keys[k] for k in key_ids]).apply(pins)


def base64_text(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
