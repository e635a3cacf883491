"""The pinned charts meet the values the program passes: every release renders, every value is one
its chart reads, and what the values are for shows in the rendered objects."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests import charts
from tests.charts import ChartError, Release, env_of, objects_of, one, pod_template, selects
from tests.harness import Recording, run_program

Rendered = dict[str, list[dict[str, Any]]]  # chart name -> objects


@pytest.fixture(scope="session")
def releases(recordings: dict[str, Recording]) -> dict[str, dict[str, Release]]:
    return {stack: charts.releases(run) for stack, run in recordings.items()}


@pytest.fixture(scope="session")
def rendered(releases: dict[str, dict[str, Release]]) -> dict[str, Rendered]:
    return {
        stack: {chart: charts.render(release) for chart, release in by_chart.items()}
        for stack, by_chart in releases.items()
    }


EXPECTED_CHARTS = {
    "cert-manager",
    "cloudnative-pg",
    "kuma",
    "eck-operator",
    "jaeger",
    "opentelemetry-collector",
    "fluent-bit",
}


def test_each_stack_installs_the_expected_releases(releases: dict[str, dict[str, Release]]) -> None:
    assert set(releases["dev"]) == EXPECTED_CHARTS  # no backups in dev: no Barman Cloud plugin
    assert set(releases["prod"]) == EXPECTED_CHARTS | {"plugin-barman-cloud"}


def test_every_release_renders_with_the_values_the_program_passes(rendered: dict[str, Rendered], stack: str) -> None:
    for chart, objects in rendered[stack].items():
        assert objects, f"{chart} rendered nothing"


def test_every_value_the_program_passes_is_read_by_its_chart(
    releases: dict[str, dict[str, Release]], stack: str
) -> None:
    unread = {chart: charts.unread_values(release) for chart, release in releases[stack].items()}
    assert {chart: paths for chart, paths in unread.items() if paths} == {}


# ---- the checks themselves catch planted mistakes -----------------------------------------------------


def planted(release: Release, path: str, value: Any) -> dict[str, Any]:
    values = copy.deepcopy(dict(release.values))
    node = values
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return values


def test_a_misspelt_value_key_is_reported(releases: dict[str, dict[str, Release]]) -> None:
    kuma = releases["prod"]["kuma"]
    assert charts.unread_values(kuma, planted(kuma, "cni.chaned", True)) == ["cni.chaned"]
    jaeger = releases["prod"]["jaeger"]
    # The values the program passed before this chart was ever rendered: keys of another chart.
    assert charts.unread_values(jaeger, planted(jaeger, "collector.replicaCount", 2)) == ["collector.replicaCount"]
    # Free-form maps the chart passes through whole are read, whatever their keys.
    assert charts.unread_values(jaeger, planted(jaeger, "userconfig.extensions.anything", {"a": 1})) == []


def test_a_value_the_schema_refuses_fails_the_render(releases: dict[str, dict[str, Release]]) -> None:
    cert_manager = releases["prod"]["cert-manager"]
    with pytest.raises(ChartError, match="replicaCount"):
        charts.render(cert_manager, planted(cert_manager, "replicaCount", "two"))


# ---- effects: what the values are for, in the rendered objects -----------------------------------------


def jaeger_config(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = one(objects, "Deployment", "jaeger")
    args = pod_template(deployment)["spec"]["containers"][0]["args"]
    assert args[:2] == ["--config", "/etc/jaeger/user-config.yaml"], "Jaeger runs its built-in configuration"
    config_map = one(objects, "ConfigMap", "user-config")
    return dict(yaml.safe_load(config_map["data"]["user-config.yaml"]))


def volume_sources(pod: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """mount path -> (volume name, volume) of the pod's first container."""
    volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    return {m["mountPath"]: (m["name"], volumes[m["name"]]) for m in pod["spec"]["containers"][0]["volumeMounts"]}


def test_prod_jaeger_stores_spans_in_the_platform_elasticsearch_over_verified_tls(
    rendered: dict[str, Rendered], recordings: dict[str, Recording]
) -> None:
    objects = rendered["prod"]["jaeger"]
    config = jaeger_config(objects)
    store = config["exporters"]["jaeger_storage_exporter"]["trace_storage"]
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["jaeger_storage_exporter"]
    assert config["extensions"]["jaeger_query"]["storage"]["traces"] == store
    es = config["extensions"]["jaeger_storage"]["backends"][store]["elasticsearch"]
    assert es["server_urls"] == [recordings["prod"].outputs["elasticsearchUrl"]]
    assert es["server_urls"][0].startswith("https://")
    assert "insecure" not in es["tls"] and "insecure_skip_verify" not in es["tls"]
    # The CA file and the password file are the Secrets the platform creates for that purpose.
    deployment = one(objects, "Deployment", "jaeger")
    mounts = volume_sources(pod_template(deployment))
    ca_dir, ca_file = es["tls"]["ca_file"].rsplit("/", 1)
    _, ca_volume = mounts[ca_dir]
    certificate = recordings["prod"].one("kubernetes:cert-manager.io/v1:Certificate", "elasticsearch-http-certificate")
    assert ca_volume["secret"]["secretName"] == certificate.spec["secretName"]
    assert ca_volume["secret"]["items"] == [{"key": "ca.crt", "path": ca_file}]
    password_dir, password_file = es["auth"]["basic"]["password_file"].rsplit("/", 1)
    _, password_volume = mounts[password_dir]
    writer = recordings["prod"].named("elasticsearch-jaeger-credentials")
    assert password_volume["secret"]["secretName"] == writer.metadata["name"]
    assert writer.metadata["namespace"] == "observability"
    assert password_volume["secret"]["items"] == [{"key": "password", "path": password_file}]
    assert es["auth"]["basic"]["username"] == writer.inputs["stringData"]["username"]
    realm = recordings["prod"].named("elasticsearch-jaeger-realm")
    assert realm.inputs["stringData"]["roles"] == "trace-writer"  # least privilege, not `elastic`
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"


def test_dev_jaeger_keeps_traces_in_memory_in_one_replica(rendered: dict[str, Rendered]) -> None:
    objects = rendered["dev"]["jaeger"]
    config = jaeger_config(objects)
    store = config["exporters"]["jaeger_storage_exporter"]["trace_storage"]
    assert list(config["extensions"]["jaeger_storage"]["backends"][store]) == ["memory"]
    assert one(objects, "Deployment", "jaeger")["spec"]["replicas"] == 1


def test_jaeger_listens_where_its_service_and_probes_point(rendered: dict[str, Rendered], stack: str) -> None:
    objects = rendered[stack]["jaeger"]
    config = jaeger_config(objects)
    ports = {p["port"] for p in one(objects, "Service", "jaeger")["spec"]["ports"]}
    otlp = config["receivers"]["otlp"]["protocols"]
    for endpoint in (otlp["grpc"]["endpoint"], config["extensions"]["jaeger_query"]["http"]["endpoint"]):
        host, port = endpoint.rsplit(":", 1)
        assert host == "0.0.0.0" and int(port) in ports
    container = pod_template(one(objects, "Deployment", "jaeger"))["spec"]["containers"][0]
    health = config["extensions"]["healthcheckv2"]["http"]["endpoint"]
    assert container["readinessProbe"]["httpGet"]["port"] == int(health.rsplit(":", 1)[1])


def test_the_collector_only_receives_otlp_and_exports_traces_to_jaeger(
    rendered: dict[str, Rendered], stack: str
) -> None:
    objects = rendered[stack]["opentelemetry-collector"]
    config = yaml.safe_load(one(objects, "ConfigMap", "otel-collector")["data"]["relay"])
    assert set(config["receivers"]) == {"otlp"}
    assert set(config["service"]["pipelines"]) == {"traces"}
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"] and traces["exporters"] == ["otlp_grpc"]
    assert config["exporters"]["otlp_grpc"]["endpoint"] == "jaeger.observability.svc:4317"
    service_ports = {p["name"]: p["port"] for p in one(objects, "Service", "otel-collector")["spec"]["ports"]}
    assert service_ports == {"otlp": 4317, "otlp-http": 4318}


def test_kuma_cni_is_chained_into_the_standard_cni_directories(rendered: dict[str, Rendered], stack: str) -> None:
    daemon_set = one(rendered[stack]["kuma"], "DaemonSet", "kuma-cni-node")
    pod = pod_template(daemon_set)["spec"]
    env = env_of(pod["containers"][0])
    assert env["CHAINED_CNI_PLUGIN"] == "true"
    assert env["CNI_NET_DIR"] == "/etc/cni/net.d"
    assert env["CNI_CONF_NAME"] == ""  # the installer chains into the first configuration it finds
    host_paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert host_paths == {"cni-bin-dir": "/opt/cni/bin", "cni-net-dir": "/etc/cni/net.d"}
    network_config = one(rendered[stack]["kuma"], "ConfigMap", "kuma-cni-config")["data"]["cni_network_config"]
    assert '"cni_bin_dir": "/opt/cni/bin"' in network_config


def test_kuma_cni_directories_follow_the_stack(recordings: dict[str, Recording]) -> None:
    gke = {"binDir": "/home/kubernetes/bin", "confName": "10-calico.conflist"}
    run = run_program("prod", mutate=lambda p: p["mesh"].update(cni=gke))
    assert run.error is None, run.error
    objects = charts.render(charts.releases(run)["kuma"])
    pod = pod_template(one(objects, "DaemonSet", "kuma-cni-node"))["spec"]
    assert env_of(pod["containers"][0])["CNI_CONF_NAME"] == "10-calico.conflist"
    assert {"name": "cni-bin-dir", "hostPath": {"path": "/home/kubernetes/bin"}} in pod["volumes"]


def workloads(objects: list[dict[str, Any]], kinds: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    for obj in objects:
        if obj["kind"] in kinds:
            yield obj


def test_replicas_and_resources_the_stack_sets_are_rendered(
    releases: dict[str, dict[str, Release]], rendered: dict[str, Rendered], recordings: dict[str, Recording], stack: str
) -> None:
    config = recordings[stack]
    for chart, objects in rendered[stack].items():
        release = config.one(charts.RELEASE_TYPE, releases[stack][chart].resource)
        replicas = _release_config(stack, chart)["replicas"]
        resources = _release_config(stack, chart)["resources"]
        kinds = ("Deployment", "StatefulSet") if replicas is not None else ("DaemonSet",)
        found = list(workloads(objects, kinds))
        assert found, f"{chart}: no {kinds} rendered"
        for workload in found:
            where = f"{chart} {workload['kind']} {workload['metadata']['name']}"
            if replicas is not None:
                assert workload["spec"]["replicas"] == replicas, where
            for container in pod_template(workload)["spec"]["containers"]:
                assert container.get("resources") == resources, f"{where} container {container['name']}"
        assert release.inputs["name"] == releases[stack][chart].name


def _release_config(stack: str, chart: str) -> dict[str, Any]:
    from stacks.config import PlatformConfig  # noqa: PLC0415 - the typed stack config, for its defaults
    from tests.harness import platform_object  # noqa: PLC0415

    platform = PlatformConfig.model_validate(platform_object(stack))
    release = next(r for r in platform.helm_releases().values() if r.chart == chart)
    return {"replicas": release.replicas, "resources": release.resources.model_dump()}


def test_every_replicated_release_workload_has_a_disruption_budget(
    rendered: dict[str, Rendered], releases: dict[str, dict[str, Release]], recordings: dict[str, Recording], stack: str
) -> None:
    budgets = [
        (r.metadata["namespace"], r.spec["selector"]["matchLabels"])
        for r in recordings[stack].kubernetes_objects()
        if r.kind == "PodDisruptionBudget"
    ]
    for chart, objects in rendered[stack].items():
        namespace = releases[stack][chart].namespace
        budgets += [
            (b["metadata"].get("namespace", namespace), b["spec"]["selector"]["matchLabels"])
            for b in objects_of(objects, "PodDisruptionBudget")
        ]
    uncovered = []
    for chart, objects in rendered[stack].items():
        namespace = releases[stack][chart].namespace
        for workload in workloads(objects, ("Deployment", "StatefulSet")):
            labels = pod_template(workload)["metadata"]["labels"]
            here = workload["metadata"].get("namespace", namespace)
            covered = any(ns == here and selects(selector, labels) for ns, selector in budgets)
            if workload["spec"]["replicas"] > 1 and not covered:
                uncovered.append(f"{chart} {workload['kind']} {workload['metadata']['name']}")
    assert uncovered == []


# ---- the program renders each release before registering it -------------------------------------------


def template_calls(run: Recording) -> dict[str, dict[str, Any]]:
    """Release name -> the options of the program's `helm template` call to the provider, and how
    many resources had been registered when it was made (`_registered_before`)."""
    found = {}
    for call in run.calls:
        if call.token == "kubernetes:helm:template":
            options = yaml.safe_load(call.args["jsonOpts"])
            found[options["release_name"]] = {**options, "_registered_before": call.registered_before}
    return found


def test_each_release_is_rendered_by_the_provider_with_its_exact_values(recording: Recording) -> None:
    calls = template_calls(recording)
    registered = recording.of_type(charts.RELEASE_TYPE)
    assert set(calls) == {r.inputs["name"] for r in registered}
    for release in registered:
        call = calls[release.inputs["name"]]
        assert call["values"] == release.inputs["values"]
        assert (call["namespace"], call["version"]) == (release.inputs["namespace"], release.inputs["version"])
        assert call["fetch_opts"]["repo"] == release.inputs["repositoryOpts"]["repo"]
        # Rendered before it is registered.
        assert recording.resources.index(release) >= call["_registered_before"]


def test_a_charts_directory_replaces_the_repositories() -> None:
    directory = str(charts.charts_dir())
    run = run_program("prod", mutate=lambda p: p.update(chartsDirectory=directory))
    assert run.error is None, run.error
    calls = template_calls(run)
    for release in run.of_type(charts.RELEASE_TYPE):
        local = f"{directory}/{release.inputs['chart'].rsplit('/', 1)[1]}"
        assert release.inputs["chart"] == local and "repositoryOpts" not in release.inputs
        assert f"{calls[release.inputs['name']]['path']}/{calls[release.inputs['name']]['chart']}" == local


def test_a_charts_directory_must_hold_the_pinned_versions(tmp_path: Any) -> None:
    from tests.harness import refusal  # noqa: PLC0415

    message = refusal(lambda p: p.update(chartsDirectory=str(tmp_path)))
    assert f"chartsDirectory: no chart directory {tmp_path}/cert-manager-v1.21.1 for certManager.release" in message
    (tmp_path / "cert-manager-v1.21.1").mkdir()
    (tmp_path / "cert-manager-v1.21.1" / "Chart.yaml").write_text("name: cert-manager\nversion: v1.20.0\n")
    message = refusal(lambda p: p.update(chartsDirectory=str(tmp_path)))
    assert "holds cert-manager v1.20.0, but certManager.release pins cert-manager v1.21.1" in message
