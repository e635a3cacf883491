"""Helpers shared by every component: labels, metadata and child resource options."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.models.base import ResourcesConfig
from components.models.cluster import ProtectionConfig

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
    namespace: pulumi.Input[str] | None = None,
    labels: Mapping[str, pulumi.Input[str]] | None = None,
    annotations: Mapping[str, pulumi.Input[str]] | None = None,
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


@dataclass(frozen=True)
class Protection:
    """Resource options for objects whose loss loses data (see components.models.cluster.ProtectionConfig)."""

    protect: bool = False
    retain_on_delete: bool = False

    @classmethod
    def of(cls, config: ProtectionConfig) -> Protection:
        return cls(config.protect, config.retain_on_delete)


def child(
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] | None = None,
    protection: Protection | None = None,
    retain: bool = True,
    **extra: object,
) -> pulumi.ResourceOptions:
    """Options of a component's child: parented (so providers and aliases flow), optional deps, and
    for stateful objects their `protection` (with `retain_on_delete` only if it must outlive the stack)."""
    if protection is not None:
        extra = {**extra, "protect": protection.protect, "retain_on_delete": protection.retain_on_delete and retain}
    return pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on or []), **extra)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container, as Kubernetes quantities."""

    cpu: str
    memory: str
    cpu_limit: str
    memory_limit: str

    @classmethod
    def of(cls, config: ResourcesConfig) -> Resources:
        return cls(config.requests.cpu, config.requests.memory, config.limits.cpu, config.limits.memory)

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
    """A pinned third-party chart: from its repository, or from a local chart directory."""

    chart: str
    version: str
    repository: str
    namespace: str
    values: Mapping[str, object] = field(default_factory=dict)
    path: str | None = None  # a local chart directory (air-gapped clusters, tests); wins over `repository`
    replicas: int | None = None  # of the release's workloads; each component maps it to its chart's keys
    resources: Resources | None = None  # of the release's main containers, likewise
    protect: bool = False  # for operators whose CRDs hold data (Pulumi then refuses to uninstall them)

    @property
    def highly_available(self) -> bool:
        return (self.replicas or 1) > 1

    @property
    def resources_dict(self) -> dict[str, dict[str, str]] | None:
        return self.resources.as_dict() if self.resources else None


def release_pdb(
    resource_name: str, chart: HelmChart, selector: Mapping[str, str], opts: pulumi.ResourceOptions
) -> k8s.policy.v1.PodDisruptionBudget | None:
    """A PodDisruptionBudget for a release's replicated pods, where its chart has no setting for one.

    Named after the pods' `app.kubernetes.io/instance` (the release), in the release's namespace.
    """
    if not chart.highly_available:
        return None
    return k8s.policy.v1.PodDisruptionBudget(
        resource_name,
        metadata=meta(selector["app.kubernetes.io/instance"], chart.namespace),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            min_available=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector))
        ),
        opts=opts,
    )


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


TEMPLATE_FUNCTION = "kubernetes:helm:template"


class ChartRenderError(Exception):
    """A release's chart does not render with the values the program passes."""


def render_chart(release_name: str, chart: HelmChart, values: Mapping[str, object], parent: pulumi.Resource) -> Any:
    """The chart rendered by the Kubernetes provider's own Helm (what `helm install` would apply),
    for the cluster the provider targets: its version and the API versions it serves.

    Called for every release before it is registered, in preview as in update, so a value the
    chart's schema refuses or a template cannot render fails the preview, naming the release.
    """
    options: dict[str, object] = {
        "release_name": release_name,
        "namespace": chart.namespace,
        "values": dict(values),
        "version": chart.version,
        "skip_crd_rendering": True,
    }
    if chart.path:
        local = Path(chart.path)
        options |= {"path": str(local.parent), "chart": local.name}
    elif chart.repository.startswith("oci://"):
        options["chart"] = f"{chart.repository.rstrip('/')}/{chart.chart}"
    else:
        options |= {"chart": chart.chart, "fetch_opts": {"repo": chart.repository, "version": chart.version}}
    try:
        result = pulumi.runtime.invoke(
            TEMPLATE_FUNCTION, {"jsonOpts": json.dumps(options)}, pulumi.InvokeOptions(parent=parent)
        )
    except Exception as error:
        raise ChartRenderError(
            f"Helm release {release_name} ({chart.chart} {chart.version}) does not render with the values "
            f"the program passes: {error}"
        ) from None
    return (result.value or {}).get("result")


def helm_release(
    name: str,
    release_name: str,
    chart: HelmChart,
    values: Mapping[str, object],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    """An operator as a pinned Helm release that waits for its resources (and hooks) to be ready.

    The release name is explicit so object names inside the chart are stable. The chart is
    rendered first (`render_chart`), so bad values fail before anything is installed.
    """
    merged = deep_merge(values, chart.values)
    if opts.parent is None:
        raise ValueError(f"release {name} must be a component's child")
    objects = render_chart(release_name, chart, merged, opts.parent)
    if objects is not None:
        pulumi.log.info(f"rendered {chart.chart} {chart.version}: {len(objects)} objects", opts.parent)
    source = (
        {"chart": chart.path}
        if chart.path
        else {"chart": chart.chart, "repository_opts": k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository)}
    )
    if chart.protect:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=True))
    return k8s.helm.v3.Release(
        name,
        name=release_name,
        version=chart.version,
        namespace=chart.namespace,
        create_namespace=True,
        atomic=True,
        cleanup_on_fail=True,
        wait_for_jobs=True,
        timeout=600,
        values=merged,
        opts=opts,
        **source,
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
