"""Prometheus runs what the stacks configure it with, against the processes that run here.

Prometheus (Debian's package) loads the PrometheusRule the stack renders as its rule file, and
scrapes what the kong-opa PodMonitor implies (the port and path it names, with the labels the
Prometheus operator gives a PodMonitor's targets: namespace, container, endpoint) of the real OPA
running prod's rendered policies. The policy engine's alert expressions are then evaluated by
Prometheus over OPA's own series: they must find them (a metric or label OPA does not export
would leave an alert silent forever), and PolicyEngineErrors must see real failed decisions.
Kong, its controller and Kuma do not run here: their rules load, their series are absent."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import Recording, run_catalogue
from tests.processes import free_port, request, stop, until, wait_for_port
from tests.test_opa import RunningOpa, start_opa


def get(port: int, path: str, body: bytes | None = None) -> tuple[int, Any]:
    return request(port, path, [("Content-Type", "application/json")], body)


def pod_monitor_scrape(recording: Recording, name: str, port: int) -> dict[str, Any]:
    """The scrape job the Prometheus operator makes of a PodMonitor, for one pod on loopback."""
    monitor = next(r for r in recording.resources if r.kind == "PodMonitor" and r.metadata["name"] == name)
    endpoint = monitor.spec["podMetricsEndpoints"][0]
    namespace = monitor.metadata["namespace"]
    pod = recording.named("kong-deployment").pod_spec  # the pods its selector picks
    selector = monitor.spec["selector"]["matchLabels"]
    assert (
        selector.items() <= recording.named("kong-deployment").inputs["spec"]["template"]["metadata"]["labels"].items()
    )
    container = next(
        c["name"] for c in pod["containers"] if any(p.get("name") == endpoint["port"] for p in c.get("ports") or [])
    )
    return {
        "job_name": f"podMonitor/{namespace}/{name}/0",
        "metrics_path": endpoint.get("path", "/metrics"),
        "scrape_interval": "1s",
        "static_configs": [
            {
                "targets": [f"127.0.0.1:{port}"],
                "labels": {
                    "namespace": namespace,
                    "pod": "kong-7d9f8b6c5-x2x4q",
                    "container": container,
                    "endpoint": endpoint["port"],
                },
            }
        ],
    }


@dataclass
class Running:
    prometheus: int  # Prometheus' port
    opa: RunningOpa
    rules: list[dict[str, Any]]  # the rendered rule groups

    def query(self, expr: str) -> list[dict[str, Any]]:
        status, answer = get(self.prometheus, "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert status == 200 and answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def alert(self, name: str) -> str:
        return str(next(r["expr"] for g in self.rules for r in g["rules"] if r.get("alert") == name))


@pytest.fixture
def monitored(tmp_path: Path, recordings: dict[str, Recording]) -> Iterator[Running]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: scripts/setup installs Debian's prometheus package")
    platform = recordings["prod"]
    opa = start_opa(tmp_path, platform, run_catalogue("prod-research", platform.outputs))
    rule = next(r for r in platform.resources if r.kind == "PrometheusRule")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": rule.spec["groups"]}, sort_keys=False))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "scrape_configs": [pod_monitor_scrape(platform, "kong-opa", opa.diagnostic_port)],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=log,
        )
    try:
        wait_for_port(port, process, "prometheus", timeout=30)
        assert until(lambda: get(port, "/-/ready")[0] == 200, timeout=30), "prometheus did not get ready"
        yield Running(port, opa, rule.spec["groups"])
    finally:
        stop(process)
        stop(opa.process)


def test_prometheus_loads_every_rendered_rule_and_evaluates_it(monitored: Running) -> None:
    def evaluated() -> list[dict[str, Any]]:
        _status, answer = get(monitored.prometheus, "/api/v1/rules")
        rules = [r for g in answer["data"]["groups"] for r in g["rules"]]
        return rules if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules) else []

    rules = until(evaluated, timeout=30)
    expected = [r.get("alert") or r.get("record") for g in monitored.rules for r in g["rules"]]
    assert sorted(r["name"] for r in rules) == sorted(expected)
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]


def test_the_policy_engine_alerts_find_opas_real_series(monitored: Running) -> None:
    data_api = f"/v1/data/{'platform/gateway/decision'}"
    decision = json.dumps({"input": {"api": {"catalogue": "platform", "name": "assistant"}}}).encode()
    assert get(monitored.opa.port, data_api, decision)[0] == 200
    # Scraped through the monitor: `up` and the Data API's request histogram, with the labels the
    # alerts select on (container="opa", handler="v1/data").
    assert until(lambda: monitored.query('up{container="opa", endpoint="opa-diagnostic"} == 1'))
    assert until(lambda: monitored.query('http_request_duration_seconds_count{container="opa", handler="v1/data"}'))
    assert not monitored.query(monitored.alert("PolicyEngineDown"))
    p99 = monitored.alert("PolicyEngineSlow").rsplit(" > ", 1)[0]

    def deciding() -> list[dict[str, Any]]:  # decisions across scrapes, so their rate is not empty
        assert get(monitored.opa.port, data_api, decision)[0] == 200
        return [r for r in monitored.query(p99) if r["value"][1] != "NaN"]

    slow = until(deciding, timeout=30)
    assert slow and float(slow[0]["value"][1]) < 0.1  # a P99 computed from OPA's real buckets
    # Decisions OPA fails (a body that is no JSON: 400), repeated so the rate over 5m rises.
    errors = monitored.alert("PolicyEngineErrors")
    assert not monitored.query(errors)

    def failing() -> list[dict[str, Any]]:
        assert get(monitored.opa.port, data_api, b"{not json")[0] == 400
        return monitored.query(errors)

    fired = until(failing, timeout=30)
    assert fired and fired[0]["metric"]["pod"] == "kong-7d9f8b6c5-x2x4q" and float(fired[0]["value"][1]) > 0
