"""Benchmark: synthesize the prod stack with 10, 100 and 1,000 more APIs and consumers.

    .venv/bin/python -m benchmarks.catalogue [sizes...]

For each size it reports the resources and Kubernetes objects the program declares per API and
per consumer beyond the committed prod stack, and its wall time against the same number of
trivial resources (the SDK's own floor) twice: under the SDK's own mock monitor, and under the
recording harness the tests use (which also deserializes and records every input). Targets: at
most 2 Kubernetes objects per API beyond shared ones, linear growth, and at most 1.2x the
trivial time.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness import Recording, platform_object, run_program

TRIVIAL = Path(__file__).with_name("trivial_program.py")
AUTH_MODES = ["jwt", "key-auth", "oauth2", "none"]


def catalogue(size: int) -> dict[str, Any]:
    apis, consumers = [], []
    for index in range(size):
        auth = AUTH_MODES[index % len(AUTH_MODES)]
        api: dict[str, Any] = {
            "name": f"api-{index}",
            "hosts": [f"api{index // 50}.example.com"],
            "paths": [f"/v1/service-{index}"],
            "backend": {"namespace": "ai-services", "selector": {"app": f"svc-{index}"}, "port": 8080},
            "auth": auth,
            "rateLimit": {"minute": 600},
        }
        if auth != "none":
            api["allowedGroups"] = ["ai-users"]
        if auth == "oauth2":
            api["scopes"] = ["read"]
        apis.append(api)
        consumers.append({"username": f"client-{index}", "groups": ["ai-users"], "apiKeyRotations": ["2026-11"]})
    return {"apis": apis, "consumers": consumers}


API_OBJECT = re.compile(r"(^|-)api-\d+(-|$)")
CONSUMER_OBJECT = re.compile(r"(^|-)client-\d+(-|$)")
MESH_PERMISSION = "MeshTrafficPermission"


def stack_with(size: int) -> dict[str, Any]:
    """The committed prod platform object with `size` more APIs and consumers."""
    platform = platform_object("prod")
    synthetic = catalogue(size)
    committed = platform["catalogue"]
    # Added to the committed catalogue, so the stack's own references (mesh overrides, calls) hold.
    platform["catalogue"] = {
        **committed,
        "apis": committed.get("apis", []) + synthetic["apis"],
        "consumers": committed.get("consumers", []) + synthetic["consumers"],
    }
    return platform


def timed(record: bool, **kwargs: Any) -> tuple[Recording, float]:
    start = time.perf_counter()
    run = run_program("prod", record=record, **kwargs)
    elapsed = time.perf_counter() - start
    if run.error is not None:
        raise SystemExit(f"benchmark run failed: {run.error}")
    return run, elapsed


@dataclass(frozen=True)
class Measurement:
    size: int
    resources: int
    objects: int
    per_api: float  # Kong's Kubernetes objects named after a synthetic API (Service, Ingress)
    mesh_per_api: float  # MeshTrafficPermissions: one per distinct backend, and each synthetic API has its own
    per_consumer: float  # Kubernetes objects named after a synthetic consumer
    seconds_sdk: float  # the program under the SDK's own mock monitor
    trivial_sdk: float  # as many trivial resources, SDK mock monitor
    seconds_recorded: float  # the program under the recording harness the tests use
    trivial_recorded: float  # as many trivial resources, recording harness


def objects_of(platform: dict[str, Any]) -> tuple[int, list[tuple[str, str]]]:
    """(resources, [(kind, name)] of the Kubernetes objects) for a platform object."""
    run, _ = timed(True, platform=platform)
    return len(run.resources), [(o.kind, o.name) for o in run.kubernetes_objects()]


def against_floor(platform: dict[str, Any], resources: int, record: bool) -> tuple[float, float]:
    """Seconds for the program, and for as many trivial resources through the same monitor."""
    run, seconds = timed(record, platform=platform)
    trivial, floor = timed(record, program=TRIVIAL, extra_config={"benchmark:count": str(resources)})
    if not run.registered == trivial.registered == resources:
        raise SystemExit(f"registered {run.registered} and {trivial.registered} resources, expected {resources}")
    return seconds, floor


def measure(size: int, timing: bool = True) -> Measurement:
    resources, objects = objects_of(stack_with(size))
    api_objects = [kind for kind, name in objects if API_OBJECT.search(name)]
    mesh = api_objects.count(MESH_PERMISSION)
    per_api = (len(api_objects) - mesh) / max(size, 1)
    per_consumer = sum(1 for _, name in objects if CONSUMER_OBJECT.search(name)) / max(size, 1)
    sdk = recorded = (0.0, 0.0)
    if timing:
        sdk = against_floor(stack_with(size), resources, record=False)
        recorded = against_floor(stack_with(size), resources, record=True)
    return Measurement(size, resources, len(objects), per_api, mesh / max(size, 1), per_consumer, *sdk, *recorded)


def main(sizes: list[int]) -> int:
    base = measure(0, timing=False)
    print(
        "| APIs + consumers | resources | Kong objects per API | mesh permissions per API | per consumer | "
        "shared objects added | "
        "seconds (SDK mocks) | trivial | ratio | seconds (recording harness) | trivial | ratio |"
    )
    print("| --- " * 12 + "|")
    for size in sizes:
        m = measure(size)
        shared = m.objects - base.objects - round((m.per_api + m.mesh_per_api + m.per_consumer) * size)
        print(
            f"| {size} + {size} | {m.resources} | {m.per_api:.2f} | {m.mesh_per_api:.2f} | {m.per_consumer:.2f} | "
            f"{shared} | "
            f"{m.seconds_sdk:.1f} | {m.trivial_sdk:.1f} | {m.seconds_sdk / m.trivial_sdk:.2f} | "
            f"{m.seconds_recorded:.1f} | {m.trivial_recorded:.1f} | {m.seconds_recorded / m.trivial_recorded:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main([int(a) for a in sys.argv[1:]] or [10, 100, 1000]))
