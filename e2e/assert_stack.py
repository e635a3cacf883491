"""Read a deployed stack back from the API server and compare it with what the program declares.

    python e2e/assert_stack.py STACK [--state STATE.json]   after `pulumi up`
    python e2e/assert_stack.py STACK --gone                 after `pulumi destroy`
    ... --catalogue                                         a team's catalogue stack (in catalogue/)

Run in the e2e workspace: the expected objects come from running the same program under the
recording mocks with the workspace's own `Pulumi.<STACK>.yaml` (the committed file plus what the
e2e set in it). After `up`, every declared object must exist with every declared field stored as
declared (a field the API server pruned is a failure), no object of ours may exist that the stack
does not declare (nothing orphaned), and with `--state` (`pulumi stack export`) no Kubernetes
object may be held by two resources of the state (nothing duplicated). After `destroy`, none of
the declared objects may remain.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from e2e.kube import PART_OF, Kube  # noqa: E402
from stacks.loader import CATALOGUE, validate  # noqa: E402
from tests.harness import RecordedResource, Recording, run_catalogue, run_program  # noqa: E402

# Fields the API server legitimately rewrites: write-only or normalised on storage.
SKIPPED_FIELDS = {"stringData"}


def workspace_platform(stack: str) -> dict[str, Any]:
    """The platform object of the workspace's stack file (where `pulumi config set` wrote)."""
    document = yaml.safe_load(Path(f"Pulumi.{stack}.yaml").read_text())
    return dict(document["config"]["api-platform:platform"])


def object_path(kube: Kube, obj: RecordedResource) -> str:
    api_version, kind = obj.inputs["apiVersion"], obj.inputs["kind"]
    group_path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    resources = {r["kind"]: r for r in kube.get(group_path)["resources"] if "/" not in r["name"]}
    resource = resources[kind]
    namespace = obj.metadata.get("namespace")
    scope = f"/namespaces/{namespace}" if resource["namespaced"] and namespace else ""
    return f"{group_path}{scope}/{resource['name']}/{obj.metadata['name']}"


def provider_computed(recording: Recording) -> Callable[[Any], bool]:
    """Whether a declared value carries what the random and tls providers compute (a key, a
    password), directly or base64-encoded: the mocks made their own, so only its presence can be
    compared here (e2e/served_pins.py compares the keys the pinned hosts hold with the real ones)."""
    material = [v for outputs in recording.computed.values() for v in outputs.values() if isinstance(v, str)]

    def carries(value: Any) -> bool:
        text = str(value)
        try:
            decoded = base64.b64decode(text, validate=True).decode(errors="replace")
        except (binascii.Error, ValueError):
            decoded = ""
        return any(m in text or (decoded and m in decoded) for m in material)

    return carries


def differences(
    declared: Any, live: Any, path: str = "", computed: Callable[[Any], bool] = lambda _: False
) -> list[str]:
    """Where `declared` is not contained in `live` (maps by subset, lists element-wise); values the
    providers compute need only be present."""
    if isinstance(declared, dict):
        if not isinstance(live, dict):
            return [f"{path}: declared an object, stored {live!r}"]
        found = []
        for key, value in declared.items():
            if key in SKIPPED_FIELDS or value is None:
                continue
            if key not in live:
                found.append(f"{path}.{key}: declared but not stored (pruned?)")
            else:
                found += differences(value, live[key], f"{path}.{key}", computed)
        return found
    if isinstance(declared, list):
        if not isinstance(live, list) or len(live) != len(declared):
            return [f"{path}: declared {len(declared)} items, stored {live!r}"]
        return [d for i, item in enumerate(declared) for d in differences(item, live[i], f"{path}[{i}]", computed)]
    if declared != live and str(declared) != str(live) and not computed(declared):
        return [f"{path}: declared {declared!r}, stored {live!r}"]
    return []


def adr_checks(kube: Kube, stack: str) -> list[str]:
    """The ADR's numbers, read from the server as such (on top of the field-by-field comparison)."""
    hpa = kube.get("/apis/autoscaling/v2/namespaces/kong/horizontalpodautoscalers/kong")["spec"]
    expected = (3, 50) if stack == "prod" else (hpa["minReplicas"], hpa["maxReplicas"])
    problems = []
    if (hpa["minReplicas"], hpa["maxReplicas"]) != expected:
        problems.append(f"gateway HPA scales {hpa['minReplicas']}-{hpa['maxReplicas']}, expected 3-50")
    deployment = kube.get("/apis/apps/v1/namespaces/kong/deployments/kong")
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    if env["KONG_DATABASE"].get("value") != "postgres" or "secretKeyRef" not in env["KONG_PG_PASSWORD"]["valueFrom"]:
        problems.append("Kong is not configured for PostgreSQL with a password from a Secret")
    if env["KONG_SSL_CIPHER_SUITE"].get("value") != "modern":
        problems.append("Kong does not enforce TLS 1.3 (KONG_SSL_CIPHER_SUITE)")
    print(f"{stack}: gateway HPA {hpa['minReplicas']}-{hpa['maxReplicas']}, KONG_DATABASE=postgres, TLS 1.3 only")
    return problems


def strays(
    kube: Kube, objects: list[RecordedResource], within: Callable[[dict[str, Any]], bool] = lambda _: True
) -> list[str]:
    """Objects labelled as ours in the cluster (`within` the stack's reach) that the stack does not
    declare. Controllers' own objects are excepted: those with an owner reference, and the Endpoints
    the endpoints controller keeps for each Service (with its labels, but no owner)."""
    declared = {(o.kind, o.metadata.get("namespace", ""), o.metadata["name"]) for o in objects}
    return [
        f"{o['kind']} {o['metadata'].get('namespace', '')}/{o['metadata']['name']}: in the cluster, not declared"
        for o in kube.objects(PART_OF)
        if not o["metadata"].get("ownerReferences")
        and o["kind"] != "Endpoints"
        and within(o)
        and (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) not in declared
    ]


def catalogue_run(stack: str) -> tuple[Recording, Callable[[dict[str, Any]], bool]]:
    """A team catalogue stack as the program declares it (on its platform stack's real outputs), and
    what is within its reach: its namespaces and its permissions in the mesh namespace."""
    raw = dict(yaml.safe_load(Path(f"Pulumi.{stack}.yaml").read_text())["config"][CATALOGUE.full_key])
    platform = subprocess.run(
        ["pulumi", "stack", "output", "--stack", raw["platformStack"], "--json", "--non-interactive"],
        capture_output=True,
        text=True,
        check=True,
    )
    recording = run_catalogue(stack, json.loads(platform.stdout), catalogue=raw)
    owned = set(validate(raw, f"Pulumi.{stack}.yaml", CATALOGUE).owned_namespaces)  # type: ignore[attr-defined]
    prefix = f"allow-{raw['name']}-"

    def within(obj: dict[str, Any]) -> bool:
        meta = obj["metadata"]
        return meta.get("namespace") in owned or (
            obj["kind"] == "MeshTrafficPermission" and meta["name"].startswith(prefix)
        )

    return recording, within


def duplicates(state: dict[str, Any]) -> list[str]:
    """Kubernetes objects that more than one resource of the state holds."""
    holders: dict[tuple[str, str, str], list[str]] = {}
    for resource in state["deployment"].get("resources", []):
        outputs = resource.get("outputs") or {}
        metadata = outputs.get("metadata") or {}
        if resource["type"].startswith("kubernetes:") and outputs.get("kind") and metadata.get("name"):
            key = (outputs["kind"], metadata.get("namespace", ""), metadata["name"])
            holders.setdefault(key, []).append(resource["urn"])
    return [f"{kind} {ns}/{name}: held by {urns}" for (kind, ns, name), urns in holders.items() if len(urns) > 1]


def compare(kube: Kube, objects: list[RecordedResource], computed: Callable[[Any], bool], gone: bool) -> list[str]:
    """Each declared object as stored (or, `gone`, absent; waiting up to 90 s for deletions)."""
    deadline = time.monotonic() + (90 if gone else 0)
    while True:
        problems = []
        for obj in objects:
            where = f"{obj.kind} {obj.metadata.get('namespace', '')}/{obj.metadata['name']}"
            status, live = kube.request("GET", object_path(kube, obj))
            if gone:
                if status != 404:
                    problems.append(f"{where}: still present after destroy")
            elif status != 200:
                problems.append(f"{where}: not found (HTTP {status})")
            else:
                declared = {k: v for k, v in obj.inputs.items() if k not in {"apiVersion", "kind"}}
                problems += [f"{where}{d}" for d in differences(declared, live, computed=computed)]
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(2)


def main(argv: list[str]) -> int:
    stack, gone, catalogue = argv[0], "--gone" in argv, "--catalogue" in argv
    if catalogue:
        recording, within = catalogue_run(stack)
    else:
        recording, within = run_program(stack, platform=workspace_platform(stack)), lambda _: True
    if recording.error is not None:
        raise SystemExit(f"the program failed under mocks: {recording.error}")
    kube = Kube(Path(os.environ["E2E_CLUSTER_DIR"]))
    objects = recording.kubernetes_objects()
    problems = compare(kube, objects, provider_computed(recording), gone)
    if not gone:
        problems += ([] if catalogue else adr_checks(kube, stack)) + strays(kube, objects, within)
        if "--state" in argv:
            problems += duplicates(json.loads(Path(argv[argv.index("--state") + 1]).read_text()))
    verb = "absent" if gone else "stored as declared"
    if problems:
        print(f"{stack}: {len(problems)} problem(s):", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"{stack}: all {len(objects)} declared Kubernetes objects {verb}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
