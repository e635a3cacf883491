"""Helpers of scripts/bench-engine (the real-engine benchmark); run in its Pulumi workspace.

python -m benchmarks.engine catalogue STACK_FILE N [--offset K]
    add N synthetic APIs and consumers (benchmarks.catalogue's shape, numbered from K) to a stack file
python -m benchmarks.engine baseline STACK [--clients 10]
    server-side apply every Kubernetes object the stack declares, straight to the API server
    with parallel clients (namespaces first): the floor any deployment tool can reach.
    Prints `<objects> <seconds>`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from benchmarks.catalogue import catalogue
from e2e.kube import Kube
from stacks.loader import CATALOGUE
from tests.harness import RecordedResource, run_catalogue, run_program

PLATFORM = "api-platform:platform"
APPLY = "application/apply-patch+yaml"


def add_catalogue(stack_file: Path, size: int, offset: int = 0) -> None:
    """Synthetic APIs and consumers number `offset` to `offset + size - 1` added to the stack file."""
    document = yaml.safe_load(stack_file.read_text())
    platform = document["config"][PLATFORM]
    everything = catalogue(offset + size)
    synthetic = {key: items[offset:] for key, items in everything.items()}
    committed = platform["catalogue"]
    committed["apis"] = committed.get("apis", []) + synthetic["apis"]
    committed["consumers"] = committed.get("consumers", []) + synthetic["consumers"]
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))


def team_stack_file(index: int) -> Path:
    return Path("catalogue") / f"Pulumi.bench-{index}.yaml"


def split_catalogues(size: int, teams: int, offset: int | None = None) -> None:
    """The platform registers `teams` catalogues; each gets a stack file with its share of the APIs."""
    if offset is not None:  # one more API in team-0's catalogue
        document = yaml.safe_load(team_stack_file(0).read_text())
        extra = _in_namespace(catalogue(offset + 1), "team-0", offset)
        document["config"][CATALOGUE.full_key]["catalogue"]["apis"] += extra["apis"]
        team_stack_file(0).write_text(yaml.safe_dump(document, sort_keys=False))
        return
    stack_file = Path("Pulumi.prod.yaml")
    document = yaml.safe_load(stack_file.read_text())
    platform = document["config"][PLATFORM]
    names = [f"team-{i}" for i in range(teams)]
    platform["namespaces"]["applications"] += [{"name": n, "meshInjection": True} for n in names]
    platform["catalogues"] = [*platform.get("catalogues", []), *({"name": n, "namespaces": [n]} for n in names)]
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    cluster = platform["cluster"]
    everything = catalogue(size)
    for index, name in enumerate(names):
        share = {key: items[index::teams] for key, items in everything.items()}
        config = {
            "name": name,
            "platformStack": "organization/api-platform/prod",
            "environment": "prod",
            "cluster": cluster,
            "protection": {"protect": True},
            "consumersNamespace": name,
            "catalogue": _in_namespace(share, name),
        }
        team_stack_file(index).write_text(yaml.safe_dump({"config": {CATALOGUE.full_key: config}}, sort_keys=False))


def _in_namespace(synthetic: dict[str, Any], namespace: str, start: int = 0) -> dict[str, Any]:
    apis = synthetic["apis"][start:]
    for api in apis:
        api["backend"]["namespace"] = namespace
    return {"apis": apis, "consumers": synthetic["consumers"][start:] if start == 0 else []}


class Paths:
    """API paths of objects, from the server's discovery (read once per group version)."""

    def __init__(self, kube: Kube):
        self.kube, self.cache = kube, {}  # type: ignore[var-annotated]

    def __call__(self, obj: dict[str, Any]) -> str:
        api_version, kind = obj["apiVersion"], obj["kind"]
        group_path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        if group_path not in self.cache:
            listed = self.kube.get(group_path)["resources"]
            self.cache[group_path] = {r["kind"]: r for r in listed if "/" not in r["name"]}
        resource = self.cache[group_path][kind]
        namespace = obj["metadata"].get("namespace")
        scope = f"/namespaces/{namespace}" if resource["namespaced"] and namespace else ""
        return f"{group_path}{scope}/{resource['name']}/{obj['metadata']['name']}"


def declared_objects(stack: str, catalogues: list[str]) -> list[dict[str, Any]]:
    """The Kubernetes objects of the platform stack and of its team catalogue stacks."""
    platform = yaml.safe_load(Path(f"Pulumi.{stack}.yaml").read_text())["config"][PLATFORM]
    runs = [run_program(stack, platform=platform)]
    for team in catalogues:
        raw = yaml.safe_load((Path("catalogue") / f"Pulumi.{team}.yaml").read_text())["config"][CATALOGUE.full_key]
        runs.append(run_catalogue(team, runs[0].outputs, catalogue=raw))
    for run in runs:
        if run.error is not None:
            raise SystemExit(f"the program failed under mocks: {run.error}")
    return [as_object(r) for run in runs for r in run.kubernetes_objects()]


def as_object(resource: RecordedResource) -> dict[str, Any]:
    return {k: v for k, v in resource.inputs.items() if v is not None}


def apply_all(kube: Kube, objects: Iterable[dict[str, Any]], clients: int) -> None:
    paths = Paths(kube)
    ordered = list(objects)
    namespaces = [o for o in ordered if o["kind"] == "Namespace"]
    rest = [o for o in ordered if o["kind"] != "Namespace"]

    def apply(obj: dict[str, Any]) -> None:
        status, body = kube.request("PATCH", paths(obj) + "?fieldManager=bench&force=true", obj, APPLY)
        if status not in (200, 201):
            raise SystemExit(f"apply {obj['kind']} {obj['metadata']['name']}: HTTP {status}: {body}")

    for namespace in namespaces:
        apply(namespace)
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(apply, rest))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.engine")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("catalogue")
    add.add_argument("stack_file", type=Path)
    add.add_argument("size", type=int)
    add.add_argument("--offset", type=int, default=0)
    split = commands.add_parser("split")
    split.add_argument("size", type=int)
    split.add_argument("teams", type=int)
    split.add_argument("--offset", type=int)
    base = commands.add_parser("baseline")
    base.add_argument("stack")
    base.add_argument("--catalogues", nargs="*", default=[])
    base.add_argument("--clients", type=int, default=10)
    args = parser.parse_args(argv)
    if args.command == "catalogue":
        add_catalogue(args.stack_file, args.size, args.offset)
        return 0
    if args.command == "split":
        split_catalogues(args.size, args.teams, args.offset)
        return 0
    objects = declared_objects(args.stack, args.catalogues)
    kube = Kube(Path(os.environ["E2E_CLUSTER_DIR"]))
    start = time.monotonic()
    apply_all(kube, objects, args.clients)
    print(len(objects), f"{time.monotonic() - start:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
