"""Helpers shared by every component: labels, metadata and child resource options."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

PART_OF = "api-platform"
MANAGED_BY = "pulumi"


def app_labels(name: str, component: str, instance: str | None = None) -> dict[str, str]:
    """The recommended `app.kubernetes.io/*` labels of one workload or object."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance or name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The immutable subset of `app_labels` used in selectors."""
    return {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}


@dataclass(frozen=True)
class ObjectDefaults:
    """Labels and annotations that every object of a stack carries (set once by the composition).

    This plays the role of a stack transform, but unlike transforms it is visible to mock
    tests and to the policy pack, because it is applied when the inputs are built.
    """

    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


# A context variable, so each program run (and each test run of the program) has its own.
_DEFAULTS: ContextVar[ObjectDefaults | None] = ContextVar("object_defaults", default=None)


def set_object_defaults(defaults: ObjectDefaults) -> None:
    _DEFAULTS.set(defaults)


def object_defaults() -> ObjectDefaults:
    return _DEFAULTS.get() or ObjectDefaults()


def meta(
    name: str,
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> k8s.meta.v1.ObjectMetaArgs:
    """ObjectMeta with an explicit name (no auto-naming: object names are part of the API)."""
    defaults = object_defaults()
    merged_labels = {**defaults.labels, **(labels or {})}
    merged_annotations = {**defaults.annotations, **(annotations or {})}
    return k8s.meta.v1.ObjectMetaArgs(
        name=name,
        namespace=namespace,
        labels=merged_labels or None,
        annotations=merged_annotations or None,
    )


def child(
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] | None = None,
    **extra: object,
) -> pulumi.ResourceOptions:
    """Options of a component's child: parented (so providers and aliases flow), optional deps."""
    return pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on or []), **extra)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container, as Kubernetes quantities."""

    cpu: str
    memory: str
    cpu_limit: str
    memory_limit: str

    def as_dict(self) -> dict[str, dict[str, str]]:
        """The same, as a plain mapping (for custom resources' pod templates)."""
        return {
            "requests": {"cpu": self.cpu, "memory": self.memory},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }

    def args(self) -> k8s.core.v1.ResourceRequirementsArgs:
        as_dict = self.as_dict()
        return k8s.core.v1.ResourceRequirementsArgs(requests=as_dict["requests"], limits=as_dict["limits"])


def restricted_container_security(user: int | None = None) -> k8s.core.v1.SecurityContextArgs:
    """The Pod Security "restricted" profile plus a read-only root filesystem."""
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        run_as_user=user,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def restricted_pod_security(user: int) -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=user,
        run_as_group=user,
        fs_group=user,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def spread_over_zones_and_nodes(selector: Mapping[str, str]) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    """Spread replicas across zones and nodes; scheduling still succeeds in a single zone."""
    return [
        k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key=key,
            when_unsatisfiable="ScheduleAnyway",
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector)),
        )
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


@dataclass(frozen=True)
class HelmChart:
    """A pinned third-party chart."""

    chart: str
    version: str
    repository: str
    namespace: str
    values: Mapping[str, object] = field(default_factory=dict)


def deep_merge(base: Mapping[str, object], override: Mapping[str, object]) -> dict[str, object]:
    """`override` merged into `base`; nested mappings merge, everything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def helm_release(
    name: str, release_name: str, chart: HelmChart, values: Mapping[str, object], opts: pulumi.ResourceOptions
) -> k8s.helm.v3.Release:
    """An operator as a pinned Helm release that waits for its resources (and hooks) to be ready.

    The release name is explicit so object names inside the chart are stable.
    """
    return k8s.helm.v3.Release(
        name,
        name=release_name,
        chart=chart.chart,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository),
        namespace=chart.namespace,
        create_namespace=True,
        atomic=True,
        cleanup_on_fail=True,
        wait_for_jobs=True,
        timeout=600,
        values=deep_merge(values, chart.values),
        opts=opts,
    )


def custom_resource(
    name: str,
    api_version: str,
    kind: str,
    metadata: k8s.meta.v1.ObjectMetaArgs,
    spec: Mapping[str, object],
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        name, api_version=api_version, kind=kind, metadata=metadata, spec=dict(spec), opts=opts
    )
