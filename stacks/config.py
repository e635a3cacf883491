"""Typed stack configuration.

Everything that differs between environments is read from the `api-platform:platform` object
in `Pulumi.<stack>.yaml` and validated here before any resource is registered. Keys are
camelCase in YAML (the Pulumi convention) and snake_case in Python. Secrets never live in this
object: they are separate secure keys (see `stacks.secrets`).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Kubernetes label keys: optional DNS-subdomain prefix, then a name of at most 63 characters.
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"  # optional prefix/
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


def _dns_label(value: str) -> str:
    if len(value) > 63 or not DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid Kubernetes name (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


def _labels(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if not LABEL_KEY.match(key):
            raise ValueError(f"label key {key!r} is not a valid Kubernetes label key")
        if not LABEL_VALUE.match(val):
            raise ValueError(f"label value {val!r} (key {key!r}) is not a valid Kubernetes label value")
    return value


K8sName = Annotated[str, AfterValidator(_dns_label)]
Labels = Annotated[dict[str, str], AfterValidator(_labels)]


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
    )


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
    applications: list[NamespaceConfig] = Field(
        default_factory=lambda: [NamespaceConfig(name="ai-services", mesh_injection=True)],
        description="namespaces of the backend services that Kong routes to",
    )

    def all(self) -> list[NamespaceConfig]:
        return [self.gateway, self.database, *self.applications]

    @model_validator(mode="after")
    def _unique_names(self) -> NamespacesConfig:
        names = [ns.name for ns in self.all()]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"namespace names must be unique, repeated: {', '.join(duplicates)}")
        return self


class PlatformConfig(StrictModel):
    """The whole `api-platform:platform` object of a stack."""

    environment: Literal["dev", "prod"] = Field(description="the environment class; prod turns on the strict checks")
    cluster: ClusterConfig = Field(default=ClusterConfig(), description="the Kubernetes provider's target")
    labels: Labels = Field(default_factory=dict, description="extra labels on every Kubernetes object")
    namespaces: NamespacesConfig = Field(default=NamespacesConfig(), description="the namespaces the platform owns")

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"
