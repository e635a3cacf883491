"""The composition: one explicit Kubernetes provider and the platform's components, in the
order of ARCHITECTURE.md. Every environment difference comes from the validated config."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.k8s import ObjectDefaults, set_object_defaults
from components.namespaces import NamespaceSpec, PlatformNamespaces, PlatformNamespacesArgs
from stacks.config import ClusterConfig, PlatformConfig


def await_annotations(cluster: ClusterConfig) -> dict[str, str]:
    """Annotations that change how the Kubernetes provider waits for and deletes objects."""
    annotations = {}
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


def build_platform(cfg: PlatformConfig) -> dict[str, Any]:
    """Register every resource of the stack; returns the stack outputs."""
    set_object_defaults(ObjectDefaults(labels=dict(cfg.labels), annotations=await_annotations(cfg.cluster)))
    provider = kubernetes_provider(cfg.cluster)
    on_cluster = pulumi.ResourceOptions(providers=[provider])

    namespaces = PlatformNamespaces(
        "platform",
        PlatformNamespacesArgs(
            namespaces=[
                NamespaceSpec(name=ns.name, pod_security=ns.pod_security, mesh_injection=ns.mesh_injection)
                for ns in cfg.namespaces.all()
            ]
        ),
        on_cluster,
    )

    return {
        "environment": cfg.environment,
        "namespaces": namespaces.names,
    }
