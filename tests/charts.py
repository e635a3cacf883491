"""The stacks' Helm releases, rendered by the pinned charts with exactly the values the program passes.

The charts are the upstream chart sources at the pinned versions, in `../shared/charts` (or
$API_PLATFORM_CHARTS_DIR), one directory per `<chart>-<version>`. Helm is the version the
Kubernetes provider itself renders with, built by `e2e/toolchain.sh helm` into the toolchain cache.

`render` runs `helm template` for the cluster version the stacks target, with the API versions of
the custom resources the platform installs; a value the chart's `values.schema.json` refuses, or a
template that cannot render, is a `ChartError`. `unread_values` lists value paths the chart does
not read: not declared in its `values.yaml` (subcharts included), not inside a map the chart passes
through whole, and not referenced by any template.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from e2e.kube import crd_documents
from tests.crd_schema import crds_dir
from tests.harness import ROOT, Recording
from tests.processes import toolchain_binary

KUBE_VERSION = "v1.34.4"  # the version of the e2e control plane, which the stacks target
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"


class ChartError(Exception):
    """`helm template` refused the release."""


@dataclass(frozen=True)
class Release:
    """One Helm release as the program registers it."""

    resource: str  # the Pulumi resource name
    name: str  # the release name
    chart: str
    version: str
    namespace: str
    values: Mapping[str, Any]

    @property
    def directory(self) -> Path:
        return charts_dir() / f"{self.chart}-{self.version}"


def charts_dir() -> Path:
    return Path(os.environ.get("API_PLATFORM_CHARTS_DIR", ROOT.parent / "shared" / "charts"))


def releases(recording: Recording) -> dict[str, Release]:
    """Every release the recorded program registers, by chart name."""
    found = {}
    for resource in recording.of_type(RELEASE_TYPE):
        inputs = resource.inputs
        chart = Path(inputs["chart"]).name.removesuffix(f"-{inputs['version']}")  # a local path or a name
        found[chart] = Release(
            resource.name, inputs["name"], chart, inputs["version"], inputs["namespace"], inputs.get("values") or {}
        )
    return found


@cache
def helm() -> str:
    """The Helm binary of the toolchain cache, built on first use (about three minutes cold)."""
    return toolchain_binary("helm")


@cache
def api_versions() -> tuple[str, ...]:
    """The custom resource API versions the platform installs (charts gate objects on them)."""
    versions = set()
    for crd in crd_documents([crds_dir()]):
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                versions.add(f"{crd['spec']['group']}/{version['name']}")
                versions.add(f"{crd['spec']['group']}/{version['name']}/{crd['spec']['names']['kind']}")
    return tuple(sorted(versions))


def render(release: Release, values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The objects `helm install` would apply (hooks included, chart tests not)."""
    given = json.dumps(release.values if values is None else values, sort_keys=True)
    return copy.deepcopy(_render(release.name, release.directory, release.namespace, given))


@cache
def _render(name: str, directory: Path, namespace: str, values: str) -> list[dict[str, Any]]:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as values_file:
        values_file.write(values)
        values_file.flush()
        command = [
            helm(),
            "template",
            name,
            str(directory),
            "--namespace",
            namespace,
            "--values",
            values_file.name,
            "--kube-version",
            KUBE_VERSION,
            "--skip-tests",
            *(f"--api-versions={v}" for v in api_versions()),
        ]
        run = subprocess.run(command, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise ChartError(f"{directory.name}: {run.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


# ---- which values a chart reads ------------------------------------------------------------------

Path_ = tuple[str, ...]
VALUES_REFERENCE = re.compile(r"\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)")
INDEX_REFERENCE = re.compile(r"index\s+\$?\.Values((?:\s+\"[^\"]+\")+)")
ACTION = re.compile(r"\{\{-?(.*?)-?\}\}", re.DOTALL)
# Template functions and keywords that take a whole value (a map or list) and emit or reuse it.
PASS_THROUGH = re.compile(
    r"\b(toYaml|toJson|toPrettyJson|tpl|with|range|merge|mergeOverwrite|mustMerge|mustMergeOverwrite|"
    r"deepCopy|mustDeepCopy|include|dict|set)\b|:="
)


@dataclass(frozen=True)
class ChartValues:
    """What a chart declares and reads, with subcharts under their alias."""

    defaults: dict[str, Any]
    referenced: frozenset[Path_]  # .Values paths that templates read
    passed_through: frozenset[Path_]  # .Values paths that templates use whole


def _subcharts(directory: Path) -> Iterator[tuple[str, Path]]:
    metadata = yaml.safe_load((directory / "Chart.yaml").read_text())
    for dependency in metadata.get("dependencies") or []:
        yield dependency.get("alias") or dependency["name"], directory / "charts" / dependency["name"]


def _template_references(directory: Path, prefix: Path_) -> tuple[set[Path_], set[Path_]]:
    referenced: set[Path_] = set()
    whole: set[Path_] = set()
    for template in sorted((directory / "templates").rglob("*")):
        if not template.is_file():
            continue
        for action in ACTION.findall(template.read_text()):
            passes = bool(PASS_THROUGH.search(action))
            for match in VALUES_REFERENCE.finditer(action):
                path = prefix + tuple(match.group(1).strip(".").split("."))
                referenced.add(path)
                if passes:
                    whole.add(path)
            for match in INDEX_REFERENCE.finditer(action):
                path = prefix + tuple(re.findall(r"\"([^\"]+)\"", match.group(1)))
                referenced.add(path)
                if passes:
                    whole.add(path)
    return referenced, whole


@cache
def chart_values(directory: Path) -> ChartValues:
    defaults = yaml.safe_load((directory / "values.yaml").read_text()) or {}
    referenced, whole = _template_references(directory, ())
    for alias, subchart in _subcharts(directory):
        sub = chart_values(subchart)
        defaults[alias] = {**sub.defaults, **(defaults.get(alias) or {})}
        referenced |= {(alias, *p) for p in sub.referenced}
        whole |= {(alias, *p) for p in sub.passed_through}
    return ChartValues(defaults, frozenset(referenced), frozenset(whole))


def leaf_paths(values: Mapping[str, Any], prefix: Path_ = ()) -> Iterator[Path_]:
    """Every path to a value that is not a non-empty map (lists and scalars are leaves)."""
    for key, value in values.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and value:
            yield from leaf_paths(value, path)
        else:
            yield path


def _declared(defaults: Mapping[str, Any], path: Path_) -> tuple[bool, Any]:
    node: Any = defaults
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return False, None
        node = node[key]
    return True, node


def is_read(chart: ChartValues, path: Path_) -> bool:
    """Whether the chart reads the value at `path` (see the module docstring)."""
    if path[0] == "global":  # shared with every subchart by Helm itself
        return True
    declared, _ = _declared(chart.defaults, path)
    if declared or path in chart.referenced:
        return True
    prefixes = [path[:length] for length in range(len(path) - 1, 0, -1)]
    if any(prefix in chart.passed_through for prefix in prefixes):
        return True
    for prefix in prefixes:  # the deepest map the chart declares: read whole only if it is free-form
        declared, default = _declared(chart.defaults, prefix)
        if declared:
            return default is None or default == {}
    return False


def unread_values(release: Release, values: Mapping[str, Any] | None = None) -> list[str]:
    """Dotted paths of the values the release sets that its chart does not read."""
    chart = chart_values(release.directory)
    given = release.values if values is None else values
    return [".".join(path) for path in leaf_paths(given) if not is_read(chart, path)]


# ---- reading rendered objects ----------------------------------------------------------------------


def objects_of(rendered: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in rendered if o.get("kind") == kind]


def one(rendered: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects_of(rendered, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def pod_template(workload: dict[str, Any]) -> dict[str, Any]:
    return dict(workload["spec"]["template"])


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())
