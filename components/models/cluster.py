"""Where a stack deploys: the cluster it reaches, the namespaces the platform owns, and the protection
of stateful objects."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.models.base import K8sName, StrictModel


class ClusterConfig(StrictModel):
    """How the stack reaches its cluster: one explicit Kubernetes provider per stack."""

    context: str | None = Field(
        default=None, description="kubeconfig context to deploy to; unset uses the current context"
    )
    kubeconfig_path: str | None = Field(
        default=None, description="path of the kubeconfig file; unset uses $KUBECONFIG or ~/.kube/config"
    )
    skip_await: bool = Field(
        default=False,
        description="annotate every object with pulumi.com/skipAwait (only for API servers without a kubelet, "
        "as in the end-to-end test)",
    )
    deletion_propagation: Literal["foreground", "background", "orphan"] | None = Field(
        default=None, description="pulumi.com/deletionPropagationPolicy for every object; unset keeps the provider's"
    )


PodSecurityLevel = Literal["privileged", "baseline", "restricted"]


class NamespaceConfig(StrictModel):
    """One platform namespace."""

    name: K8sName
    pod_security: PodSecurityLevel = Field(
        default="restricted", description="Pod Security Admission level enforced in the namespace"
    )
    mesh_injection: bool = Field(default=False, description="inject the Kuma sidecar into the namespace's pods")


class NamespacesConfig(StrictModel):
    """The namespaces the platform owns, by role."""

    gateway: NamespaceConfig = Field(
        default=NamespaceConfig(name="kong", mesh_injection=True), description="Kong Gateway and its controller"
    )
    database: NamespaceConfig = Field(
        default=NamespaceConfig(name="databases"), description="PostgreSQL clusters (outside the mesh)"
    )
    observability: NamespaceConfig = Field(
        default=NamespaceConfig(name="observability", pod_security="baseline"),
        description="Elasticsearch, Kibana, Jaeger, the OpenTelemetry Collector, alert rules",
    )
    logging: NamespaceConfig = Field(
        default=NamespaceConfig(name="logging", pod_security="privileged"),
        description="the log shipper (reads node log files through hostPath)",
    )
    applications: list[NamespaceConfig] = Field(
        default_factory=lambda: [NamespaceConfig(name="ai-services", mesh_injection=True)],
        description="namespaces of the backend services that Kong routes to",
    )

    def all(self) -> list[NamespaceConfig]:
        return [self.gateway, self.database, self.observability, self.logging, *self.applications]

    @model_validator(mode="after")
    def _unique_names(self) -> NamespacesConfig:
        names = [ns.name for ns in self.all()]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"namespace names must be unique, repeated: {', '.join(duplicates)}")
        return self


class ProtectionConfig(StrictModel):
    """What keeps production data alive through a mistaken `pulumi destroy` or a change that would
    replace it: the PostgreSQL cluster with its backups, credentials and server CA, Elasticsearch,
    their namespaces and the operators whose CRDs they are."""

    protect: bool = Field(
        default=False,
        description="Pulumi refuses to delete or replace them (prod: required); to tear down, set false and "
        "`pulumi up` first (see the README's runbook)",
    )
    retain_on_delete: bool = Field(
        default=False,
        description="a deliberate destroy leaves the data objects (clusters, their namespaces, Secrets) in the "
        "cluster, to be deleted by hand",
    )
