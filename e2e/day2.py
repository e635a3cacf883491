"""Day-2 changes on a deployed stack, each previewed and applied: the plan must be exactly the change's
footprint (creates, updates, replaces, deletes by kind), and no stateful object is ever replaced.

    python e2e/day2.py STACK          in the e2e workspace, with STACK selected and deployed

Each change edits the workspace's stack file as an operator would, then `pulumi preview --json`
gives the plan, then `pulumi up` applies it; the next change starts from there. At the end the
stack file is restored and applied, and a preview must show no changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from e2e.kube import Kube
from e2e.served_pins import gateway_pins, problems

PLATFORM = "api-platform:platform"
# Kinds whose replacement would lose data: never in any plan.
STATEFUL = {"Cluster", "ObjectStore", "ScheduledBackup", "Elasticsearch", "Namespace", "PersistentVolumeClaim"}

Plan = dict[str, dict[str, int]]  # op -> kind -> count


@dataclass(frozen=True)
class Change:
    name: str
    edit: Callable[[dict[str, Any]], None]  # edits the platform object in place
    plan: Plan
    check: Callable[[dict[str, Any]], list[str]] | None = None  # after it is applied: problems found


def _rotate_pinned_key(platform: dict[str, Any]) -> None:
    pinned = platform["catalogue"]["pinnedHosts"][0]
    pinned["keys"] = [*pinned["keys"][1:], pinned["keys"][0]]


def _serves_first_key(platform: dict[str, Any]) -> list[str]:
    """Each pinned host serves its first key now, and the pins still match the keys in the cluster."""
    pins = gateway_pins()
    found = problems(Kube(Path(os.environ["E2E_CLUSTER_DIR"])), pins)
    for pinned in platform["catalogue"]["pinnedHosts"]:
        active = pins[pinned["host"]]["active"]
        if active != pinned["keys"][0]:
            found.append(f"{pinned['host']}: serves {active}, not {pinned['keys'][0]}")
    return found


def api(platform: dict[str, Any]) -> dict[str, Any]:
    """A new API shaped like `models` (so it shares that API's plugins) with a backend of its own."""
    return {
        "name": "day2",
        "hosts": list(next(a for a in platform["catalogue"]["apis"] if a["name"] == "models")["hosts"]),
        "paths": ["/v1/day2"],
        "backend": {"namespace": "ai-services", "selector": {"app": "day2"}, "port": 8080},
        "auth": "none",
        "rateLimit": dict(next(a for a in platform["catalogue"]["apis"] if a["name"] == "models")["rateLimit"]),
    }


def consumer(platform: dict[str, Any], username: str) -> dict[str, Any]:
    return dict(next(c for c in platform["catalogue"]["consumers"] if c["username"] == username))


def _rotate(platform: dict[str, Any]) -> None:
    partner = next(c for c in platform["catalogue"]["consumers"] if c.get("apiKeyRotations"))
    partner["apiKeyRotations"] = [*partner["apiKeyRotations"], "2026-12"]


CHANGES = [
    Change(
        "add an API",
        lambda p: p["catalogue"]["apis"].append(api(p)),
        {"create": {"Service": 1, "Ingress": 1, "MeshTrafficPermission": 1}},
    ),
    Change(
        "remove it",
        lambda p: p["catalogue"]["apis"].pop(),
        {"delete": {"Service": 1, "Ingress": 1, "MeshTrafficPermission": 1}},
    ),
    Change(
        "rotate a consumer's API key",
        _rotate,
        {"create": {"RandomPassword": 1, "Secret": 1}, "update": {"KongConsumer": 1}},
    ),
    Change(
        "bump Kong's image",
        lambda p: p["kong"].update(image="kong:3.9.2"),
        {"update": {"Deployment": 1}, "replace": {"Job": 2}},
    ),
    Change(
        "raise the HPA minimum",
        lambda p: p["kong"]["autoscaling"].update(minReplicas=p["kong"]["autoscaling"]["minReplicas"] + 1),
        {"update": {"HorizontalPodAutoscaler": 1}},
    ),
    Change(
        # Clients already hold the backup's pin; its certificate is already issued: only the Ingress
        # serving the host switches Secret. No key is made or deleted.
        "rotate a pinned host to its backup key",
        _rotate_pinned_key,
        {"update": {"Ingress": 1}},
        _serves_first_key,
    ),
    Change(
        "grow PostgreSQL storage",
        lambda p: p["postgres"].update(storageSize="200Gi"),
        {"update": {"Cluster": 1}},
    ),
]


def pulumi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pulumi", *args, "--non-interactive"], capture_output=True, text=True, check=False)


def plan_of(preview: dict[str, Any]) -> Plan:
    """op -> kind -> count, without the stack itself; a replacement counts once, as `replace`."""
    plan: Plan = {}
    for step in preview.get("steps", []):
        op = step["op"]
        if op in ("same", "read", "create-replacement", "delete-replaced", "discard", "discard-replaced"):
            continue
        kind = step["urn"].split("::")[2].rsplit("$", 1)[-1].rsplit(":", 1)[-1]
        if kind == "Stack":
            continue
        plan.setdefault(op, {}).setdefault(kind, 0)
        plan[op][kind] += 1
    return plan


def main(argv: list[str]) -> int:
    stack = argv[0]
    stack_file = Path(f"Pulumi.{stack}.yaml")
    original = stack_file.read_text()
    document = yaml.safe_load(original)
    failures = []
    try:
        for change in CHANGES:
            change.edit(document["config"][PLATFORM])
            stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
            start = time.monotonic()
            preview = pulumi("preview", "--json")
            if preview.returncode != 0:
                raise SystemExit(f"{change.name}: preview failed:\n{preview.stdout[-3000:]}{preview.stderr[-3000:]}")
            plan = plan_of(json.loads(preview.stdout))
            replaced = sorted(set(plan.get("replace", {})) & STATEFUL)
            verdict = "as expected" if plan == change.plan and not replaced else f"EXPECTED {change.plan}"
            print(f"day-2 {change.name}: plan {json.dumps(plan, sort_keys=True)} {verdict}", flush=True)
            if plan != change.plan or replaced:
                failures.append(change.name)
            applied = pulumi("up", "--yes", "--skip-preview")
            if applied.returncode != 0:
                raise SystemExit(f"{change.name}: up failed:\n{applied.stdout[-3000:]}{applied.stderr[-3000:]}")
            print(f"day-2 {change.name}: previewed and applied in {time.monotonic() - start:.1f}s", flush=True)
            for problem in change.check(document["config"][PLATFORM]) if change.check else []:
                print(f"day-2 {change.name}: {problem}", file=sys.stderr)
                failures.append(change.name)
    finally:
        stack_file.write_text(original)
    restored = pulumi("up", "--yes", "--skip-preview")
    unchanged = pulumi("preview", "--expect-no-changes")
    if restored.returncode != 0 or unchanged.returncode != 0:
        raise SystemExit(
            f"restoring the stack file did not converge:\n{restored.stdout[-2000:]}{unchanged.stdout[-2000:]}"
        )
    print("day-2: stack file restored and applied; no changes left")
    if failures:
        print(f"day-2: unexpected plans: {failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
