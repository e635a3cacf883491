"""Dynamic policy evaluation: the Rego policies with the real Open Policy Agent (the version of the
image the stacks deploy), the configuration refusals, what the stacks render (the sidecar, its
ConfigMaps, the opa-authz plugins), and real decisions on loopback: OPA loading the ConfigMaps as
the stacks render them, asked by the opa-authz plugin itself in a real nginx (tests/nginx.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks.policy import rendered_policies
from stacks.policies import opa_binary
from tests.harness import ROOT, Recording, refusal, run_catalogue, run_program
from tests.nginx import Location, Provider, Server, nginx, upstream_echo
from tests.processes import free_port, request, stop, until, wait_for_port
from tests.test_edge import plugins_of
from tests.test_identity import edit_api

REGO_DIRS = [ROOT / "rego", ROOT / "catalogue" / "rego"]
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


def opa(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([opa_binary(), *args], capture_output=True, text=True, check=False)


# ---- the policies, with the real OPA ---------------------------------------------------------------


def test_the_policies_pass_opa_check_strict_and_their_own_tests() -> None:
    assert "Version: 1.22.3" in opa("version").stdout  # the image's version
    checked = opa("check", "--strict", *map(str, REGO_DIRS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = opa("test", "--format", "json", *map(str, REGO_DIRS))
    results = json.loads(tested.stdout)
    assert tested.returncode == 0 and all(r.get("fail") is not True for r in results), tested.stdout[-3000:]
    assert len(results) >= 16
    packages = {r["package"] for r in results}
    assert {
        "data.platform.gateway_test",
        "data.apis.platform.assistant_test",
        "data.apis.research.papers_test",
    } <= packages


def test_the_policy_tests_fail_when_a_rule_is_loosened(tmp_path: Path) -> None:
    """The Rego tests bite: the model allow-list that allows every model fails its own tests."""
    for directory in REGO_DIRS:
        for file in directory.rglob("*.rego"):
            target = tmp_path / file.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(file.read_text())
    loosened = tmp_path / "rego" / "apis" / "platform" / "hosted-llm.rego"
    loosened.write_text(loosened.read_text().replace("default allow := false", "default allow := true"))
    tested = opa("test", str(tmp_path / "rego"))
    assert tested.returncode != 0 and "hosted_llm_test" in tested.stdout


# ---- bad configurations are refused before anything is registered ------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            edit_api("assistant", lambda a: a["policy"].update(rules="rego/apis/platform/missing.rego")),
            "Pulumi.prod.yaml: API assistant: policy file rego/apis/platform/missing.rego does not exist",
        ),
        (
            edit_api("assistant", lambda a: a["policy"].update(rules="tests/rego/broken.rego")),
            "Pulumi.prod.yaml: policy does not compile: API assistant: tests/rego/broken.rego:",
        ),
        (
            edit_api("hosted-llm", lambda a: a["policy"].update(rules="rego/apis/platform/assistant.rego")),
            "API hosted-llm: rego/apis/platform/assistant.rego declares package apis.platform.assistant; its "
            'policy must be package apis.platform["hosted-llm"]',
        ),
        (
            edit_api("hosted-llm", lambda a: a["policy"].update(failOpen=True)),
            "API hosted-llm: policy.failOpen is refused in prod",
        ),
        (
            edit_api("assistant", lambda a: a["policy"].update(headers=["x-model", "X_Consumer_Username"])),
            "X_Consumer_Username carries credentials or identity",
        ),
        (
            lambda p: p["policy"].update(enabled=False),
            "policy.enabled is false, but APIs ['assistant', 'hosted-llm'] have a policy",
        ),
        (
            lambda p: p["catalogues"].append({"name": "platform", "namespaces": ["ai-batch"]}),
            "catalogue name 'platform' is the platform's own",
        ),
        (
            lambda p: p["policy"].update(rules=["rego/platform/missing.rego"]),
            "policy.rules[0]: policy file rego/platform/missing.rego does not exist",
        ),
    ],
)
def test_bad_policy_settings_are_refused_naming_the_api_and_the_file(change: Any, message: str) -> None:
    assert message in refusal(change)


def test_the_program_refuses_them_before_registering_anything() -> None:
    run = run_program(
        "prod", mutate=edit_api("assistant", lambda a: a["policy"].update(rules="tests/rego/broken.rego"))
    )
    assert "policy does not compile" in str(run.error) and "Traceback" not in str(run.error)
    assert run.registered == 0


# ---- what the stacks render ----------------------------------------------------------------------------


def test_opa_runs_beside_kong_on_loopback_only(recordings: dict[str, Recording]) -> None:
    for stack, run in recordings.items():
        pod = run.named("kong-deployment").pod_spec
        opa_container = next(c for c in pod["containers"] if c["name"] == "opa")
        assert opa_container["image"] == "openpolicyagent/opa:1.22.3-static"
        args = opa_container["args"]
        assert args[:2] == ["run", "--server"]
        assert "--addr=127.0.0.1:8181" in args  # the Data API: loopback only
        assert "--diagnostic-addr=0.0.0.0:8282" in args  # health and metrics
        assert {"--watch", "--ignore=.*", "--skip-version-check", "--set=decision_logs.console=true"} <= set(args)
        directories = [a for a in args if a.startswith("/policies/")]
        assert directories == ["/policies/opa-platform", "/policies/opa-apis-platform", "/policies/opa-apis-research"]
        volumes = {v["name"]: v["configMap"] for v in pod["volumes"] if v["name"].startswith("opa-")}
        assert volumes == {
            "opa-platform": {"name": "kong-opa-platform", "optional": False},
            "opa-apis-platform": {"name": "kong-opa-apis-platform", "optional": True},
            "opa-apis-research": {"name": "kong-opa-apis-research", "optional": True},
        }, stack
        assert all(m["readOnly"] for m in opa_container["volumeMounts"])
        security = opa_container["securityContext"]
        assert (
            security["readOnlyRootFilesystem"]
            and security["runAsNonRoot"]
            and security["capabilities"]["drop"] == ["ALL"]
        )
        assert opa_container["resources"]["limits"] == {"cpu": "1", "memory": "256Mi"}
        for probe in ("livenessProbe", "readinessProbe"):
            assert opa_container[probe]["httpGet"] == {"path": "/health", "port": "opa-diagnostic"}
        for job in ("kong-migrations-up", "kong-migrations-finish"):
            assert [c["name"] for c in run.named(job).pod_spec["containers"]] == ["kong-migrations"]


def test_only_opas_diagnostic_port_is_open_and_scraped(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    ingress = run.named("kong-network-policy").spec["ingress"]
    opened = {p["port"] for rule in ingress for p in rule.get("ports", [])}
    assert 8282 in opened and 8181 not in opened
    monitor = run.named("monitoring-kong-opa")
    assert monitor.kind == "PodMonitor"
    assert monitor.spec["podMetricsEndpoints"] == [{"port": "opa-diagnostic", "path": "/metrics", "interval": "15s"}]
    groups = {g["name"]: g for g in run.named("monitoring-slo-rules").spec["groups"]}
    alerts = {r["alert"]: r for r in groups["policy-engine-alerts"]["rules"]}
    assert set(alerts) == {"PolicyEngineErrors", "PolicyEngineSlow", "PolicyEngineDown"}
    assert alerts["PolicyEngineSlow"]["expr"].endswith("> 0.1")  # the APIs' decision timeout


def test_the_policy_config_maps_hold_the_repositorys_files_and_the_stacks_data(
    recordings: dict[str, Recording],
) -> None:
    run = recordings["prod"]
    platform = run.one(CONFIG_MAP, "policy-platform").inputs["data"]
    assert platform["gateway.rego"] == (ROOT / "rego" / "platform" / "gateway.rego").read_text()
    assert "/input/request/body" in platform["log_mask.rego"]
    assert json.loads(platform["data.json"]) == {
        "platform_data": {"deny": {"consumers": [], "subjects": [], "networks": []}}
    }
    apis = run.one(CONFIG_MAP, "policies-config-map")
    assert (apis.metadata["namespace"], apis.metadata["name"]) == ("kong", "kong-opa-apis-platform")
    data = apis.inputs["data"]
    assert set(data) == {"assistant.rego", "hosted-llm.rego", "data.json"}
    assert data["hosted-llm.rego"] == (ROOT / "rego" / "apis" / "platform" / "hosted-llm.rego").read_text()
    catalogue_data = json.loads(data["data.json"])["catalogue_data"]["platform"]
    assert catalogue_data["assistant"]["tenants"]["acme"] == {"assistant": True}
    assert catalogue_data["hosted-llm"]["models_by_group"]["staff"] == ["partner-small"]


def test_policed_apis_ask_opa_after_authentication(recordings: dict[str, Recording]) -> None:
    for stack, run in recordings.items():
        hosted = plugins_of(run, "hosted-llm")["opa-authz"]
        assert hosted == {
            "catalogue": "platform",
            "api": "hosted-llm",
            "decision_path": "platform/gateway/decision",
            "port": 8181,
            "timeout_ms": 100,
            "fail_open": False,
            "send_body": True,
            "max_body_bytes": 65536,
            "headers": ["x-model"],
            "claims": [],
        }, stack
        assert plugins_of(run, "assistant")["opa-authz"]["claims"] == ["tenant"]
        assert "opa-authz" not in plugins_of(run, "chat")


def test_a_policy_or_data_change_is_a_config_map_update_and_no_kong_rollout(recordings: dict[str, Recording]) -> None:
    def change(platform: dict[str, Any]) -> None:
        edit_api("assistant", lambda a: a["policy"]["data"]["tenants"].update(globex={"assistant": True}))(platform)
        platform["policy"]["data"]["deny"].update(subjects=["user-666"])

    changed = run_program("prod", mutate=change)
    before, after = recordings["prod"], changed
    differing = {r.name for r in before.resources if r.inputs != after.named(r.name).inputs}
    assert differing == {"policy-platform", "policies-config-map"}


# ---- real decisions on loopback --------------------------------------------------------------------


def write_config_map(directory: Path, data: dict[str, str]) -> None:
    """A ConfigMap volume as the kubelet writes it: the files in a timestamped directory, `..data`
    pointing at it, a link per key; an update swaps `..data` atomically and drops the old directory."""
    directory.mkdir(parents=True, exist_ok=True)
    version = directory / f"..{time.time_ns()}"
    version.mkdir()
    for key, text in data.items():
        (version / key).write_text(text)
    old = (directory / "..data").resolve() if (directory / "..data").exists() else None
    temporary = directory / "..data_tmp"
    temporary.symlink_to(version.name)
    temporary.replace(directory / "..data")
    for key in data:
        link = directory / key
        if not link.is_symlink():
            link.symlink_to(f"..data/{key}")
    for stale in directory.iterdir():
        if stale.is_symlink() and stale.name not in data and not stale.name.startswith(".."):
            stale.unlink()
    if old and old != version:
        for file in old.iterdir():
            file.unlink()
        old.rmdir()


@dataclass
class Decisions:
    """OPA started with the prod stack's rendered sidecar arguments and ConfigMaps (only the
    addresses moved to free loopback ports), nginx running oidc-jwt then opa-authz as rendered."""

    port: int
    provider: Provider
    configs: dict[str, dict[str, Any]]
    policies: Path
    config_maps: dict[str, dict[str, str]]  # volume -> the ConfigMap's data as rendered
    opa: subprocess.Popen[bytes]
    opa_log: Path

    def ask(self, api: str, body: dict[str, Any] | None = None, **claims: Any) -> tuple[int, Any, str]:
        request_id = str(uuid.uuid4())
        token = self.provider.token_for(self.configs[api]["oidc-jwt"], **claims)
        headers = [("Authorization", f"Bearer {token}"), ("X-Request-ID", request_id)]
        if body is not None:
            headers.append(("Content-Type", "application/json"))
        status, answer = request(self.port, f"/{api}", headers, json.dumps(body).encode() if body is not None else None)
        return status, answer, request_id

    def reason(self, api: str, **claims: Any) -> str:
        """Why the request is refused; "" when it reaches the upstream."""
        status, answer, _ = self.ask(api, **claims)
        return "" if status == 200 else str(answer.get("reason"))

    def update(self, volume: str, changes: dict[str, str]) -> None:
        self.config_maps[volume] = {**self.config_maps[volume], **changes}
        write_config_map(self.policies / volume, self.config_maps[volume])


@dataclass
class RunningOpa:
    """OPA started as the prod stack's rendered sidecar (its arguments and ConfigMaps), only its
    addresses moved to free loopback ports."""

    process: subprocess.Popen[bytes]
    port: int  # the Data API
    diagnostic_port: int  # health and metrics
    policies: Path  # one directory per ConfigMap volume, as the kubelet lays them out
    config_maps: dict[str, dict[str, str]]  # volume -> the ConfigMap's data as rendered
    log: Path


def start_opa(tmp_path: Path, platform: Recording, team: Recording) -> RunningOpa:
    container = next(c for c in platform.named("kong-deployment").pod_spec["containers"] if c["name"] == "opa")
    policies = tmp_path / "policies"
    config_maps = {volume: dict(data) for volume, data in rendered_policies(platform, team).items()}
    for volume, data in config_maps.items():
        write_config_map(policies / volume, data)
    opa_port, diagnostic_port = free_port(), free_port()
    args = [
        f"--addr=127.0.0.1:{opa_port}"
        if a.startswith("--addr=")
        else f"--diagnostic-addr=127.0.0.1:{diagnostic_port}"
        if a.startswith("--diagnostic-addr=")
        else a.replace("/policies/", f"{policies}/")
        for a in container["args"]
    ]
    opa_log = tmp_path / "opa.log"
    with opa_log.open("wb") as log:
        # OPA logs (decisions too) on stderr; the kubelet writes both streams to the container log.
        process = subprocess.Popen([opa_binary(), *args], stdout=log, stderr=log)
    wait_for_port(opa_port, process, "opa")
    return RunningOpa(process, opa_port, diagnostic_port, policies, config_maps, opa_log)


@pytest.fixture
def decisions(tmp_path: Path, recordings: dict[str, Recording]) -> Iterator[Decisions]:
    platform = recordings["prod"]
    team = run_catalogue("prod-research", platform.outputs)
    running = start_opa(tmp_path, platform, team)
    process, opa_port = running.process, running.port
    configs = {
        api: {**plugins_of(run, api), "opa-authz": {**plugins_of(run, api)["opa-authz"], "port": opa_port}}
        for run, api in ((platform, "assistant"), (platform, "hosted-llm"), (team, "papers"))
    }
    provider = Provider(configs["assistant"]["oidc-jwt"]["issuer"])
    idp, upstream = Server(provider.handle).start(), Server(upstream_echo).start()
    init = f"""
    local pdk = require "nginx_pdk"
    require("kong.plugins.oidc-jwt.keys").fetch = pdk.loopback_fetch("{provider.issuer}", {idp.port})
    require("kong.plugins.opa-authz.handler").post = pdk.loopback_post
"""
    locations = [
        Location(f"/{api}", [("oidc-jwt", c["oidc-jwt"]), ("opa-authz", c["opa-authz"])], f"127.0.0.1:{upstream.port}")
        for api, c in configs.items()
    ]
    try:
        # OPA stopped (the fail-closed test): nginx logs the refused connection as an error.
        with nginx(tmp_path, locations, init, tolerated=("connect() failed (111: Connection refused)",)) as port:
            yield Decisions(port, provider, configs, running.policies, running.config_maps, process, running.log)
    finally:
        stop(process)
        idp.stop()
        upstream.stop()


def test_the_shipped_policies_decide_real_requests(decisions: Decisions) -> None:
    assert decisions.ask("assistant", tenant="acme")[0] == 200
    status, answer, _ = decisions.ask("assistant", tenant="globex")
    assert (status, answer["reason"]) == (403, "tenant globex is not entitled to the assistant")
    status, answer, _ = decisions.ask("assistant", tenant="initech")  # entitled until 2027-06-30
    assert status == 200
    assert decisions.ask("assistant")[1]["reason"] == "the token names no tenant"
    assert decisions.ask("hosted-llm", {"model": "partner-large"}, groups=["ml-engineers"])[0] == 200
    status, answer, _ = decisions.ask("hosted-llm", {"model": "partner-large"}, groups=["staff"])
    assert (status, answer["reason"]) == (403, "model partner-large is not allowed for your groups")
    assert decisions.ask("hosted-llm", {"model": "partner-small"}, groups=["staff"])[0] == 200
    assert decisions.ask("papers", groups=["researchers"])[0] == 200  # a GET reads


def test_decisions_are_logged_with_the_request_id_and_without_the_body(decisions: Decisions) -> None:
    _, _, request_id = decisions.ask("hosted-llm", {"model": "partner-large", "prompt": "secret"}, groups=["staff"])

    def logged() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in decisions.opa_log.read_text().splitlines() if line.startswith("{")]
        return [e for e in lines if e.get("msg") == "Decision Log" and e["input"]["request"].get("id") == request_id]

    [entry] = until(logged)
    assert entry["result"]["allow"] is False and entry["path"] == "platform/gateway/decision"
    assert entry["input"]["api"] == {"catalogue": "platform", "name": "hosted-llm"}
    assert entry["input"]["groups"] == ["staff"] and entry["input"]["token"]["sub"] == "user-42"
    assert "body" not in entry["input"]["request"] and "secret" not in json.dumps(entry)  # masked


def test_a_data_or_policy_change_is_decided_without_a_restart(decisions: Decisions) -> None:
    pid = decisions.opa.pid
    assert decisions.ask("assistant", tenant="acme")[0] == 200
    platform = decisions.config_maps["opa-platform"]
    data = json.loads(platform["data.json"])
    data["platform_data"]["deny"]["subjects"] = ["user-42"]  # the emergency deny list
    decisions.update("opa-platform", {"data.json": json.dumps(data)})
    assert until(lambda: decisions.reason("assistant", tenant="acme") == "the subject is blocked")
    decisions.update("opa-platform", {"data.json": platform["data.json"]})
    assert until(lambda: decisions.reason("assistant", tenant="acme") == "")
    # A policy change: globex becomes entitled by rule.
    rules = decisions.config_maps["opa-apis-platform"]["assistant.rego"]
    decisions.update(
        "opa-apis-platform", {"assistant.rego": rules.replace("default allow := false", "default allow := true")}
    )
    assert until(lambda: decisions.reason("assistant", tenant="globex") == "")
    assert decisions.opa.poll() is None and decisions.opa.pid == pid


def test_a_policy_that_does_not_compile_keeps_the_last_good_one(decisions: Decisions) -> None:
    decisions.update("opa-apis-platform", {"assistant.rego": "package apis.platform.assistant\n\nallow if {\n"})
    time.sleep(2)
    assert decisions.ask("assistant", tenant="acme")[0] == 200
    assert decisions.ask("assistant", tenant="globex")[0] == 403


def test_without_opa_the_gateway_fails_closed(decisions: Decisions) -> None:
    stop(decisions.opa, signal.SIGKILL)
    status, answer, _ = decisions.ask("assistant", tenant="acme")
    assert (status, answer["reason"]) == (503, "the policy engine did not answer")
