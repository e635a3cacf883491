"""Benchmark: synthesize the prod stack with 10, 100 and 1,000 APIs and consumers.

    .venv/bin/python -m benchmarks.catalogue [sizes...]

For each size it reports the wall time of the program under the recording mocks, the resources
and Kubernetes objects it declares per API and per consumer beyond the stack without a catalogue,
and the time the same number of trivial resources takes through the same harness (the SDK's own
floor). Targets: at most 2 Kubernetes objects per API beyond shared ones, linear growth, and at
most 1.2x the trivial time.
"""

from __future__ import annotations

import sys
import time
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


def synthesize(size: int) -> tuple[Recording, float]:
    platform = platform_object("prod")
    platform["catalogue"] = {**platform["catalogue"], **catalogue(size)}
    start = time.perf_counter()
    run = run_program("prod", platform=platform)
    elapsed = time.perf_counter() - start
    if run.error is not None:
        raise SystemExit(f"size {size}: {run.error}")
    return run, elapsed


def trivial(count: int) -> float:
    start = time.perf_counter()
    run = run_program("prod", program=TRIVIAL, extra_config={"benchmark:count": str(count)})
    elapsed = time.perf_counter() - start
    assert run.error is None and len(run.resources) == count, run.error
    return elapsed


def main(sizes: list[int]) -> int:
    base, _ = synthesize(0)
    base_objects = len(base.kubernetes_objects())
    base_resources = len(base.resources)
    print(
        "| APIs + consumers | seconds | resources | k8s objects per API | k8s objects per consumer | "
        "ms per resource | trivial seconds | ratio |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for size in sizes:
        run, elapsed = synthesize(size)
        objects = run.kubernetes_objects()
        per_api = sum(1 for o in objects if o.name.startswith("apis-api-")) / size
        per_consumer = sum(1 for o in objects if o.name.startswith("consumers-client-")) / size
        floor = trivial(len(run.resources))
        print(
            f"| {size} + {size} | {elapsed:.1f} | {len(run.resources)} (+{len(run.resources) - base_resources}) | "
            f"{per_api:.2f} | {per_consumer:.2f} | {1000 * elapsed / len(run.resources):.1f} | {floor:.1f} | "
            f"{elapsed / floor:.2f} |"
        )
        shared = len(objects) - base_objects - round(per_api * size) - round(per_consumer * size)
        print(f"|  | shared objects added by the catalogue: {shared} |  |  |  |  |  |  |")
    return 0


if __name__ == "__main__":
    sys.exit(main([int(a) for a in sys.argv[1:]] or [10, 100, 1000]))
