"""Observability: Elasticsearch (ECK), Jaeger v2 with an OpenTelemetry Collector, Fluent Bit,
Prometheus monitors and the SLO alert rules (checked and unit-tested with promtool)."""

from __future__ import annotations

import copy
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import ROOT, RecordedResource, Recording, refusal, run_program

RELEASE = "kubernetes:helm.sh/v3:Release"
PROMTOOL_TESTS = ROOT / "tests" / "promtool" / "slo_test.yml"


def es(run: Recording) -> RecordedResource:
    return run.one("kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch")


def values(run: Recording, name: str) -> dict[str, Any]:
    return dict(run.one(RELEASE, name).inputs["values"])


# ---- Elasticsearch ---------------------------------------------------------------------------------


def test_elasticsearch_is_three_nodes_in_prod_and_one_in_dev(recordings: dict[str, Recording]) -> None:
    prod, dev = es(recordings["prod"]).spec, es(recordings["dev"]).spec
    assert [(n["name"], n["count"]) for n in prod["nodeSets"]] == [("default", 3)]
    assert prod["nodeSets"][0]["config"]["node.roles"] == ["master", "data", "ingest"]
    assert [n["count"] for n in dev["nodeSets"]] == [1]
    claim = prod["nodeSets"][0]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "elasticsearch-data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "200Gi"
    container = prod["nodeSets"][0]["podTemplate"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "ES_JAVA_OPTS", "value": "-Xms4g -Xmx4g"}]
    assert container["resources"]["limits"] == {"cpu": "4", "memory": "8Gi"}


def test_dedicated_masters_from_config() -> None:
    run = run_program("prod", mutate=lambda p: p["observability"]["elasticsearch"].update(dedicatedMasters=True))
    assert run.error is None
    assert [(n["name"], n["count"], n["config"]["node.roles"]) for n in es(run).spec["nodeSets"]] == [
        ("masters", 3, ["master"]),
        ("data", 3, ["data", "ingest"]),
    ]


def test_elasticsearch_tls_comes_from_the_platform_ca(recording: Recording) -> None:
    spec = es(recording).spec
    assert spec["http"]["tls"]["certificate"]["secretName"] == "platform-logs-http-tls"
    certificate = recording.named("elasticsearch-http-certificate")
    assert certificate.spec["issuerRef"]["name"] == "platform-ca"
    assert "platform-logs-es-http.observability.svc" in certificate.spec["dnsNames"]


def test_writers_get_least_privilege_users(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    roles = yaml.safe_load(run.named("elasticsearch-roles").inputs["stringData"]["roles.yml"])
    assert roles["log-writer"]["indices"][0]["names"] == ["logs-*"]
    assert roles["trace-writer"]["indices"][0]["names"] == ["jaeger-*"]
    realm = run.named("elasticsearch-fluent-bit-realm")
    assert realm.inputs["stringData"]["roles"] == "log-writer" and realm.is_secret("stringData.password")
    published = run.named("elasticsearch-fluent-bit-credentials")
    assert published.metadata["namespace"] == "logging" and published.is_secret("stringData.password")
    assert {"secretName": "platform-logs-user-fluent-bit"} in es(run).spec["auth"]["fileRealm"]


FAKE_CURL = """#!/usr/bin/env python3
import os, sys
url = next(a for a in sys.argv[1:] if a.startswith("https://"))
if "-X" in sys.argv and sys.argv[sys.argv.index("-X") + 1] == "DELETE":
    with open(os.environ["DELETED"], "a") as log:
        log.write(url.rsplit("/", 1)[1] + "\\n")
else:
    family = url.split("/_cat/indices/", 1)[1].split("-*", 1)[0]
    for line in open(os.environ["INDICES"]):
        if line.startswith(family + "-"):
            print(line.strip())
"""


def run_retention(script: str, indices: dict[str, int], tmp_path: Path) -> list[str]:
    """Run the retention script with `curl` answering from `indices` (name -> age in days)."""
    now_ms, day_ms = int(time.time() * 1000), 86_400_000
    (tmp_path / "bin").mkdir()
    curl = tmp_path / "bin" / "curl"
    curl.write_text(FAKE_CURL)
    curl.chmod(0o755)
    (tmp_path / "elastic").write_text("secret")
    (tmp_path / "indices").write_text("".join(f"{n} {now_ms - age * day_ms}\n" for n, age in indices.items()))
    run = subprocess.run(
        ["sh", "-c", script.replace("/etc/es-user/elastic", str(tmp_path / "elastic"))],
        env={
            "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
            "ES_HOST": "es.example",
            "DELETED": str(tmp_path / "deleted"),
            "INDICES": str(tmp_path / "indices"),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    deleted = tmp_path / "deleted"
    return sorted(deleted.read_text().split()) if deleted.exists() else []


def test_retention_deletes_only_indices_older_than_their_retention(
    recordings: dict[str, Recording], tmp_path: Path
) -> None:
    cron = recordings["prod"].one("kubernetes:batch/v1:CronJob", "elasticsearch-index-retention")
    assert cron.spec["schedule"] == "30 1 * * *" and cron.spec["concurrencyPolicy"] == "Forbid"
    pod = cron.spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    script = pod["containers"][0]["command"][2]
    ages = {  # prod: logs 30 days, traces 7 days
        "logs-2026.10.01": 31,
        "logs-2026.10.30": 29,
        "jaeger-span-2026-11-18": 8,
        "jaeger-service-2026-11-18": 8,
        "jaeger-span-2026-11-21": 6,
    }
    deleted = run_retention(script, ages, tmp_path)
    assert deleted == ["jaeger-service-2026-11-18", "jaeger-span-2026-11-18", "logs-2026.10.01"]


def test_dev_keeps_logs_for_its_own_retention(recordings: dict[str, Recording], tmp_path: Path) -> None:
    cron = recordings["dev"].one("kubernetes:batch/v1:CronJob", "elasticsearch-index-retention")
    script = cron.spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert run_retention(script, {"logs-a": 4, "logs-b": 2, "jaeger-span-a": 3, "jaeger-span-b": 1}, tmp_path) == [
        "jaeger-span-a",
        "logs-a",
    ]


def test_kibana(recording: Recording) -> None:
    kibana = recording.one("kubernetes:kibana.k8s.elastic.co/v1:Kibana")
    assert kibana.spec["elasticsearchRef"] == {"name": "platform-logs"}


# ---- tracing ---------------------------------------------------------------------------------------


def test_kong_traces_10_percent_with_w3c_propagation(recording: Recording) -> None:
    env = recording.named("kong-deployment").env()
    assert env["KONG_TRACING_SAMPLING_RATE"] == "0.1"
    assert env["KONG_TRACING_INSTRUMENTATIONS"] == "all"
    plugin = recording.named("apis-global-opentelemetry")
    assert plugin.inputs["plugin"] == "opentelemetry" and plugin.labels["global"] == "true"
    config = plugin.inputs["config"]
    assert config["traces_endpoint"] == "http://otel-collector.observability.svc:4318/v1/traces"
    assert config["sampling_rate"] == 0.1
    assert config["propagation"]["default_format"] == "w3c"


# ---- logging ----------------------------------------------------------------------------------------


def test_fluent_bit_ships_json_logs_to_elasticsearch(recording: Recording) -> None:
    release = recording.one(RELEASE, "logging-fluent-bit")
    assert release.inputs["namespace"] == "logging" and release.inputs["values"]["kind"] == "DaemonSet"
    config = release.inputs["values"]["config"]
    assert "Merge_Log On" in config["filters"]
    output = config["outputs"]
    for setting in (
        "Suppress_Type_Name On",
        "tls.verify On",
        "Host platform-logs-es-http.observability.svc",
        "HTTP_Passwd ${ES_PASSWORD}",
        "Logstash_Prefix logs",
    ):
        assert setting in output
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in release.inputs["values"]["env"]}
    assert env["ES_PASSWORD"] == {"name": "platform-logs-fluent-bit", "key": "password"}
    trust = recording.named("logging-ca-trust")
    assert trust.metadata["namespace"] == "logging" and trust.spec["issuerRef"]["name"] == "platform-ca"


# ---- monitoring ------------------------------------------------------------------------------------


def test_monitors(recording: Recording) -> None:
    monitors = {r.metadata["name"]: r for r in recording.resources if r.kind in {"ServiceMonitor", "PodMonitor"}}
    kong = monitors["kong"]
    assert kong.kind == "ServiceMonitor" and kong.spec["endpoints"] == [
        {"port": "status", "path": "/metrics", "interval": "15s"}
    ]
    assert kong.spec["selector"]["matchLabels"]["enable-metrics"] == "true"
    status = recording.named("kong-status")
    assert kong.spec["selector"]["matchLabels"].items() <= status.labels.items()
    assert monitors["kong-ingress-controller"].spec["podMetricsEndpoints"][0]["port"] == "metrics"
    assert monitors["kuma-control-plane"].metadata["namespace"] == "kuma-system"
    assert monitors["kong-pg"].spec["podMetricsEndpoints"] == [{"port": "metrics"}]
    assert kong.labels["release"] == "kube-prometheus-stack"


def test_dashboard(recording: Recording) -> None:
    dashboard = recording.named("monitoring-dashboard")
    assert dashboard.labels["grafana_dashboard"] == "1"
    assert "kong:latency_ms:p95_5m" in dashboard.inputs["data"]["api-platform-kong.json"]


def test_outputs_say_where_to_look(recording: Recording) -> None:
    assert recording.outputs["jaegerUrl"] == "http://jaeger.observability.svc:16686"
    assert recording.outputs["kibanaUrl"] == "https://platform-logs-kb-http.observability.svc:5601"
    assert recording.outputs["elasticsearchUrl"] == "https://platform-logs-es-http.observability.svc:9200"
    assert recording.outputs["metrics"] == "http://kong-status.kong.svc:8100/metrics"


def _rules_dir(run: Recording, tmp_path: Path, change: Any = None) -> Path:
    rule = next(r for r in run.resources if r.kind == "PrometheusRule")
    groups = copy.deepcopy(rule.spec["groups"])  # the recording is shared by every test of the session
    if change:
        change(groups)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    shutil.copy(PROMTOOL_TESTS, tmp_path / PROMTOOL_TESTS.name)
    return tmp_path


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: scripts/setup installs Debian's prometheus package")
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_rules_pass_promtool_check_and_unit_tests(recordings: dict[str, Recording], tmp_path: Path) -> None:
    directory = _rules_dir(recordings["prod"], tmp_path)
    checked = _promtool("check", "rules", "rules.yml", cwd=directory)
    assert checked.returncode == 0 and "SUCCESS: 19 rules found" in checked.stdout, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", PROMTOOL_TESTS.name, cwd=directory)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_promtool_unit_tests_catch_a_wrong_threshold(recordings: dict[str, Recording], tmp_path: Path) -> None:
    def loosen(groups: list[dict[str, Any]]) -> None:
        latency = next(r for r in groups[1]["rules"] if r["alert"] == "KongLatencyP95High")
        latency["expr"] = latency["expr"].replace("> 50", "> 500")

    directory = _rules_dir(recordings["prod"], tmp_path, loosen)
    tested = _promtool("test", "rules", PROMTOOL_TESTS.name, cwd=directory)
    assert tested.returncode != 0 and "KongLatencyP95High" in tested.stdout + tested.stderr


# ---- bad input ------------------------------------------------------------------------------------


def _refused(change: Any) -> str:
    return refusal(lambda platform: change(platform["observability"]))


def test_negative_retention_is_refused() -> None:
    assert "observability.elasticsearch.logRetentionDays: Input should be greater than or equal to 1 (got -1)" in (
        _refused(lambda o: o["elasticsearch"].update(logRetentionDays=-1))
    )


def test_sampling_outside_0_1_is_refused() -> None:
    assert "samplingRate must be between 0 and 1, got 1.5" in _refused(lambda o: o["tracing"].update(samplingRate=1.5))


def test_two_elasticsearch_nodes_are_refused() -> None:
    message = _refused(lambda o: o["elasticsearch"].update(nodes=2))
    assert "2 master-eligible nodes cannot form a safe quorum" in message


def test_prod_needs_three_elasticsearch_nodes() -> None:
    assert "observability.elasticsearch.nodes must be at least 3 in prod (got 1)" in _refused(
        lambda o: o["elasticsearch"].update(nodes=1)
    )


def test_heap_above_half_the_memory_is_refused() -> None:
    assert "heap 6g exceeds half of the memory limit 8Gi" in _refused(lambda o: o["elasticsearch"].update(heap="6g"))
