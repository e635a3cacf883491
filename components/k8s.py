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
