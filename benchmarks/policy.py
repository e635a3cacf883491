"""Benchmark: Open Policy Agent's decision time for the shipped policies, against a trivial
allow-all policy measured in the same run.

    .venv/bin/python -m benchmarks.policy [--count N]

OPA loads the prod stack's policy ConfigMaps as the stack renders them (the platform's policy,
the platform catalogue's and the research team's API policies, with their data); the inputs are
the documents the opa-authz plugin's own input builder makes for each case. `opa bench --e2e`
runs OPA's HTTP server and asks it the way the plugin does (POST /v1/data/platform/gateway/decision);
the table reports OPA's server-side handler time (median and P99 over every decision) and the
client's mean time per decision, and their ratio to the allow-all baseline. ADR-001's budget for
everything Kong adds is P95 < 50 ms.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from stacks.policies import opa_binary
from tests.harness import ROOT, Recording, run_catalogue, run_program
from tests.test_edge import plugins_of

QUERY = "data.platform.gateway.decision"
TRIVIAL = 'package platform.gateway\n\ndecision := {"allow": true}\n'
NOW = 1800000000


def rendered_policies(platform: Recording, team: Recording) -> dict[str, dict[str, str]]:
    """The policy directories Kong's OPA loads (volume -> ConfigMap data), as the stacks render them."""
    data = {
        o.metadata["name"]: o.inputs["data"]
        for run in (platform, team)
        for o in run.of_type("kubernetes:core/v1:ConfigMap")
    }
    pod = platform.named("kong-deployment").pod_spec
    return {v["name"]: data[v["configMap"]["name"]] for v in pod["volumes"] if v["name"].startswith("opa-")}


def cases(platform: Recording, team: Recording) -> list[dict[str, Any]]:
    """The requests timed: (what the case is, the decision the shipped policies should give)."""

    def case(
        name: str, allow: bool, run: Recording, api: str, groups: list[str], claims: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return {
            "name": name,
            "allow": allow,
            "conf": dict(plugins_of(run, api)["opa-authz"]),
            "request": {"method": "POST"},
            "groups": groups,
            "token": {
                "iss": "https://login.example.com/realms/platform",
                "sub": "user-42",
                "scopes": ["openid"],
                "claims": claims or {},
            },
            "now": NOW,
        }

    body = json.dumps({"model": "partner-large", "messages": [{"role": "user", "content": "hello"}]})
    by_model = case("hosted-llm, model by group (body)", True, platform, "hosted-llm", ["ml-engineers", "staff"])
    by_model["request"].update(
        body=body, headers=[["Content-Type", "application/json"], ["Content-Length", str(len(body))]]
    )
    return [
        case("assistant, entitled tenant", True, platform, "assistant", ["ml-engineers"], {"tenant": "acme"}),
        case("assistant, tenant refused", False, platform, "assistant", ["ml-engineers"], {"tenant": "globex"}),
        by_model,
        case("research papers, write by group", True, team, "papers", ["researchers", "research-editors"]),
    ]


def inputs(platform: Recording, team: Recording) -> list[dict[str, Any]]:
    built = subprocess.run(
        ["luajit", "spec/build_inputs.lua"],
        input=json.dumps(cases(platform, team)),
        cwd=ROOT / "kong-plugins" / "opa-authz",
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(built.stdout))


def data_arguments(policies: Path) -> list[str]:
    """Each mounted directory is its own root, as in the sidecar's `opa run` (a directory's data.json
    is at data's root, not under the directory's name)."""
    return [argument for d in sorted(policies.iterdir()) for argument in ("--data", str(d))]


def decide(policies: Path, document: dict[str, Any]) -> dict[str, Any]:
    """One decision by `opa eval`, as the server would give it for this input."""
    run = subprocess.run(
        [opa_binary(), "eval", "--format", "json", *data_arguments(policies), "--stdin-input", QUERY],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(run.stdout)["result"][0]["expressions"][0]["value"])


def bench(policies: Path, document: dict[str, Any], count: int) -> dict[str, float]:
    input_file = policies.parent / "input.json"
    input_file.write_text(json.dumps(document))
    run = subprocess.run(
        [
            opa_binary(),
            "bench",
            "--e2e",
            "--format",
            "json",
            "--count",
            str(count),
            *data_arguments(policies),
            "--input",
            str(input_file),
            QUERY,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    runs = [
        {
            "p50": r["Extra"]["histogram_timer_server_handler_ns_median"] / 1000,
            "p99": r["Extra"]["histogram_timer_server_handler_ns_99%"] / 1000,
            "mean": r["T"] / r["N"] / 1000,
        }
        for r in json_documents(run.stdout)
    ]
    # `--count N` repeats the benchmark N times: the median run of each figure damps a noisy neighbour.
    return {figure: statistics.median(r[figure] for r in runs) for figure in ("p50", "p99", "mean")}


def json_documents(text: str) -> list[dict[str, Any]]:
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        document, at = decoder.raw_decode(text, at)
        documents.append(document)
        while at < len(text) and text[at].isspace():
            at += 1
    return documents


def write_directories(root: Path, directories: dict[str, dict[str, str]]) -> Path:
    for volume, files in directories.items():
        (root / volume).mkdir(parents=True)
        for name, text in files.items():
            (root / volume / name).write_text(text)
    return root


def main(argv: list[str]) -> int:
    count = int(argv[argv.index("--count") + 1]) if "--count" in argv else 3
    platform = run_program("prod")
    team = run_catalogue("prod-research", platform.outputs)
    with tempfile.TemporaryDirectory() as tmp:
        shipped = write_directories(Path(tmp, "shipped"), rendered_policies(platform, team))
        trivial = write_directories(Path(tmp, "trivial"), {"opa-platform": {"gateway.rego": TRIVIAL}})
        rows = []
        for case in inputs(platform, team):
            baseline = bench(trivial, case["input"], count)
            measured = bench(shipped, case["input"], count)
            rows.append((case["name"], measured, baseline))
    print("| decision | p50 µs | p99 µs | mean µs (client) | allow-all p50 / p99 µs | ratio p50 | ratio p99 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, m, b in rows:
        print(
            f"| {name} | {m['p50']:.0f} | {m['p99']:.0f} | {m['mean']:.0f} | {b['p50']:.0f} / {b['p99']:.0f} "
            f"| {m['p50'] / b['p50']:.2f} | {m['p99'] / b['p99']:.2f} |"
        )
    worst = max(m["p99"] for _n, m, _b in rows)
    print(f"\nworst P99: {worst / 1000:.2f} ms of ADR-001's 50 ms P95 budget for everything Kong adds")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
