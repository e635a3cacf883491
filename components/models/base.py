"""The building blocks every configuration model uses: the strict base model, Kubernetes names,
labels, quantities, images, hostnames, container resources and pinned Helm releases."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Kubernetes label keys: optional DNS-subdomain prefix, then a name of at most 63 characters.
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"  # optional prefix/
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


def name_hint(name: str, known: Collection[str], shown: int = 8) -> str:
    """A short pointer to what `name` may have meant: the closest known names, else a sample."""
    close = difflib.get_close_matches(name, known, n=3)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    ordered = sorted(known)
    more = f", and {len(ordered) - shown} more" if len(ordered) > shown else ""
    return "known: " + (", ".join(ordered[:shown]) or "none") + more


def dns_label(value: str) -> str:
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


K8sName = Annotated[str, AfterValidator(dns_label)]
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


QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_QUANTITY_FACTORS = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


def quantity_value(text: str) -> float:
    """The numeric value of a Kubernetes quantity ("500m" -> 0.5, "2Gi" -> 2147483648)."""
    match = QUANTITY.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 4Gi)")
    return float(match.group(1)) * _QUANTITY_FACTORS[match.group(3)]


def _quantity(value: str) -> str:
    quantity_value(value)
    return value


Quantity = Annotated[str, AfterValidator(_quantity)]

# An image reference pinned to an explicit tag or digest; never `latest`.
IMAGE = re.compile(r"^[a-z0-9]([a-z0-9.\-/_:]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}|@sha256:[a-f0-9]{64})$")


def _image(value: str) -> str:
    if not IMAGE.match(value) or value.rsplit(":", 1)[-1] == "latest":
        raise ValueError(f"{value!r} must name an image with a pinned tag or digest (not latest)")
    return value


Image = Annotated[str, AfterValidator(_image)]
EXACT_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.\-]+)?$")


def _exact_version(value: str) -> str:
    if not EXACT_VERSION.match(value):
        raise ValueError(f"{value!r} is not an exact chart version (x.y.z; no ranges)")
    return value


ExactVersion = Annotated[str, AfterValidator(_exact_version)]


class ComputeResources(StrictModel):
    """CPU and memory of one container."""

    cpu: Quantity
    memory: Quantity


class ResourcesConfig(StrictModel):
    """Requests and limits of one container; limits may not be below requests."""

    requests: ComputeResources
    limits: ComputeResources

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> ResourcesConfig:
        for name in ("cpu", "memory"):
            request, limit = getattr(self.requests, name), getattr(self.limits, name)
            if quantity_value(limit) < quantity_value(request):
                raise ValueError(f"limits.{name} ({limit}) is below requests.{name} ({request})")
        return self


def resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> ResourcesConfig:
    return ResourcesConfig(
        requests=ComputeResources(cpu=cpu, memory=memory), limits=ComputeResources(cpu=cpu_limit, memory=memory_limit)
    )


Repository = Annotated[str, Field(pattern=r"^(https|oci)://", description="chart repository (https:// or oci://)")]


class HelmReleaseConfig(StrictModel):
    """A third-party chart installed as a pinned Helm release.

    Each release has its own model whose defaults are the pin, so a stack file sets only what it
    changes (`postgres.operator.replicas: 1`). `replicas` and `resources` are mapped onto the
    chart's own keys by the component that installs it; the chart tests check they take effect.
    """

    enabled: bool = Field(default=True, description="install it; false where the platform team runs it already")
    chart: str
    version: ExactVersion
    repository: Repository
    namespace: K8sName
    replicas: int | None = Field(default=2, ge=1, le=10, description="pods of the release's workloads")
    resources: ResourcesConfig = Field(description="requests and limits of the release's main containers")
    values: dict[str, Any] = Field(default_factory=dict, description="extra chart values, merged over ours")


HOSTNAME = re.compile(r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,63}$")


def _hostname(value: str) -> str:
    if not HOSTNAME.match(value):
        raise ValueError(f"{value!r} is not a DNS hostname")
    return value


Hostname = Annotated[str, AfterValidator(_hostname)]
