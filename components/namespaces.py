"""PlatformNamespaces: the namespaces the platform owns, with Pod Security and mesh labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.k8s import PART_OF, Protection, child, meta

MESH_INJECTION_LABEL = "kuma.io/sidecar-injection"


@dataclass(frozen=True)
class NamespaceSpec:
    name: str
    pod_security: str = "restricted"
    mesh_injection: bool = False
    stateful: bool = False  # holds data volumes (deleting the namespace deletes them)


@dataclass(frozen=True)
class PlatformNamespacesArgs:
    namespaces: list[NamespaceSpec] = field(default_factory=list)
    protection: Protection = field(default_factory=Protection)  # applied to the stateful namespaces


def namespace_labels(spec: NamespaceSpec) -> dict[str, str]:
    """Pod Security Admission enforces (and warns and audits at) the namespace's level."""
    labels = {
        "app.kubernetes.io/part-of": PART_OF,
        "pod-security.kubernetes.io/enforce": spec.pod_security,
        "pod-security.kubernetes.io/warn": spec.pod_security,
        "pod-security.kubernetes.io/audit": spec.pod_security,
    }
    labels[MESH_INJECTION_LABEL] = "enabled" if spec.mesh_injection else "disabled"
    return labels


class PlatformNamespaces(pulumi.ComponentResource):
    """Creates each namespace once; other components look them up by name in `self.names`."""

    names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: PlatformNamespacesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:namespaces:PlatformNamespaces", name, None, opts)
        self.namespaces: dict[str, k8s.core.v1.Namespace] = {}
        for spec in args.namespaces:
            self.namespaces[spec.name] = k8s.core.v1.Namespace(
                f"{name}-{spec.name}",
                metadata=meta(spec.name, labels=namespace_labels(spec)),
                opts=child(self, protection=args.protection if spec.stateful else None),
            )
        self.names = {n: ns.metadata.name for n, ns in self.namespaces.items()}
        self.register_outputs({"names": self.names})
