"""The trace pipeline runs: the real OpenTelemetry Collector (our distribution at the deployed
image's version, with the components the configuration names) and the real Jaeger v2 load the
configurations the stacks render, and a span sent the way Kong's opentelemetry plugin is
configured to send it is found in Jaeger by its service and by the request's ids.

The binaries are built by e2e/toolchain.sh (slots otelcol and jaeger) on first use."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from tests.charts import releases
from tests.harness import ROOT, Recording
from tests.processes import request, stop, until, wait_for_port
from tests.test_edge import CLUSTER_PLUGIN
from tests.traces import POD_IP_ENV, SERVICE, AddressError, Process, binary, on_loopback, rendered_process

COMPONENT_KINDS = ("receivers", "processors", "exporters", "extensions", "connectors")
JAEGER_BUILT = "2.13.0"  # e2e/toolchain.sh: github.com/jaegertracing/jaeger v1.76.0
KONG_SCOPE = InstrumentationScope(name="kong-internal", version="0.1.0")  # Kong's opentelemetry plugin


def pipeline(recording: Recording) -> tuple[Process, Process]:
    """(collector, jaeger) as the stack's releases render them."""
    found = releases(recording)
    return (
        rendered_process(found["opentelemetry-collector"], "relay"),
        rendered_process(found["jaeger"], "user-config.yaml"),
    )


def validate(command: str, config: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    file = tmp_path / f"{command}.yaml"
    file.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [binary(command), "validate", f"--config={file}"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **POD_IP_ENV},
    )


# ---- validation of both stacks' configurations ------------------------------------------------------


def used_components(config: dict[str, Any]) -> dict[str, set[str]]:
    """The component types a collector configuration names (`type/name` ids count as `type`)."""
    return {kind: {name.split("/")[0] for name in config.get(kind) or {}} for kind in COMPONENT_KINDS}


def test_the_binaries_are_what_the_stacks_deploy(stack: str, recordings: dict[str, Recording]) -> None:
    """The collector is the deployed image's version with exactly the components the configuration
    names; Jaeger is v2, the newest the module proxy serves (README: how close it is)."""
    collector, jaeger = pipeline(recordings[stack])
    tag = collector.container["image"].rsplit(":", 1)[1]
    built = yaml.safe_load(
        subprocess.run([binary("otelcol"), "components"], capture_output=True, text=True, check=True).stdout
    )
    assert built["buildinfo"]["version"] == tag
    # ... and really built from that release's modules, not only stamped with its number.
    go_mod = (ROOT / "e2e" / "otelcol" / "go.mod").read_text()
    assert f"go.opentelemetry.io/collector/otelcol v{tag}\n" in go_mod
    assert f"opentelemetry-collector-contrib/extension/healthcheckextension v{tag}\n" in go_mod
    have = {kind: {c["name"] for c in built.get(kind) or []} for kind in COMPONENT_KINDS}
    assert used_components(collector.config) == have
    deployed = jaeger.container["image"].rsplit(":", 1)[1]
    version = subprocess.run([binary("jaeger"), "version"], capture_output=True, text=True, check=True).stdout
    built_jaeger = json.loads(version.strip().splitlines()[-1])["gitVersion"].lstrip("v")
    assert (deployed.split(".")[0], built_jaeger) == ("2", JAEGER_BUILT)


def test_each_stacks_collector_and_jaeger_configurations_pass_their_own_validation(
    stack: str, recordings: dict[str, Recording], tmp_path: Path
) -> None:
    collector, jaeger = pipeline(recordings[stack])
    for command, process in (("otelcol", collector), ("jaeger", jaeger)):
        checked = validate(command, process.config, tmp_path)
        assert checked.returncode == 0, f"{stack} {command}: {checked.stderr[-2000:]}"
    if stack == "prod":  # spans in the platform Elasticsearch, over verified TLS, as the trace writer
        store = jaeger.config["extensions"]["jaeger_storage"]["backends"]["primary_store"]
        assert set(store) == {"elasticsearch"}
        assert store["elasticsearch"]["tls"]["ca_file"] and store["elasticsearch"]["auth"]["basic"]["password_file"]


def test_a_component_the_binary_lacks_or_a_misspelt_setting_fails_validation(
    recordings: dict[str, Recording], tmp_path: Path
) -> None:
    """What the validation above would catch: a pipeline naming an unconfigured component, a
    component type the collector does not have, a setting its component does not know."""
    collector, jaeger = pipeline(recordings["prod"])
    renamed = json.loads(json.dumps(collector.config).replace('"memory_limiter"', '"memorylimiter"'))
    assert "memorylimiter" in validate("otelcol", renamed, tmp_path).stderr
    # A component type our distribution does not have, wired in consistently: refused for that alone.
    unknown = json.loads(json.dumps(collector.config).replace('"otlp_grpc"', '"otlphttp"'))
    assert set(unknown["exporters"]) == {"otlphttp"} and unknown["service"]["pipelines"]["traces"]["exporters"] == [
        "otlphttp"
    ]
    assert 'unknown type: "otlphttp"' in validate("otelcol", unknown, tmp_path).stderr
    misspelt = json.loads(json.dumps(jaeger.config).replace('"password_file"', '"passwordfile"'))
    assert "passwordfile" in validate("jaeger", misspelt, tmp_path).stderr


def test_an_exporter_address_that_names_no_rendered_service_is_refused(recordings: dict[str, Recording]) -> None:
    collector, jaeger = pipeline(recordings["dev"])
    exporter = collector.config["exporters"][collector.config["service"]["pipelines"]["traces"]["exporters"][0]]
    exporter["endpoint"] = "jaeger-collector.observability.svc:4317"
    with pytest.raises(AddressError, match=r"no Service jaeger-collector\.observability"):
        on_loopback(collector, [collector, jaeger])
    exporter["endpoint"] = "jaeger.observability.svc:14250"
    with pytest.raises(AddressError, match="does not listen on 14250"):
        on_loopback(collector, [collector, jaeger])


# ---- a span from Kong to Jaeger, on loopback ---------------------------------------------------------


def global_plugin(recording: Recording, plugin: str) -> dict[str, Any]:
    found = [o.inputs["config"] for o in recording.of_type(CLUSTER_PLUGIN) if o.inputs["plugin"] == plugin]
    assert len(found) == 1, f"{len(found)} global {plugin} plugins"
    return dict(found[0])


def span_attributes(conf: dict[str, Any], headers: list[list[str]]) -> dict[str, str]:
    """What the trace-headers plugin's own handler sets on Kong's span for these request headers."""
    built = subprocess.run(
        ["luajit", "spec/span_attributes.lua"],
        input=json.dumps([{"conf": conf, "headers": headers}]),
        cwd=ROOT / "kong-plugins" / "trace-headers",
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(built.stdout)[0])


def attributes(values: dict[str, Any]) -> list[KeyValue]:
    def any_value(v: Any) -> AnyValue:
        if isinstance(v, bool):
            return AnyValue(bool_value=v)
        if isinstance(v, int):
            return AnyValue(int_value=v)
        return AnyValue(string_value=str(v))

    return [KeyValue(key=k, value=any_value(v)) for k, v in sorted(values.items())]


def kong_export(otel: dict[str, Any], kong_version: str, span: Span) -> bytes:
    """Kong's ExportTraceServiceRequest: its default resource attributes (service.name kong, its
    node id and version) under the plugin's resource_attributes, scope kong-internal."""
    resource = {
        "service.name": "kong",
        "service.instance.id": "b5e2c8a4-1f0e-4d3c-9a7b-2c1d0e9f8a7b",
        "service.version": kong_version,
        **otel.get("resource_attributes", {}),
    }
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=attributes(resource)),
                scope_spans=[ScopeSpans(scope=KONG_SCOPE, spans=[span])],
            )
        ]
    ).SerializeToString()


def start(command: str, config: dict[str, Any], tmp_path: Path, ready: int) -> subprocess.Popen[bytes]:
    file = tmp_path / f"{command}.yaml"
    file.write_text(yaml.safe_dump(config))
    log = (tmp_path / f"{command}.log").open("wb")
    process = subprocess.Popen(
        [binary(command), f"--config={file}"], stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **POD_IP_ENV}
    )
    wait_for_port(ready, process, command, timeout=60)
    return process


@pytest.fixture
def dev_pipeline(recordings: dict[str, Recording], tmp_path: Path) -> Iterator[tuple[Process, Process]]:
    """Jaeger and the collector running dev's rendered configurations, addresses on loopback."""
    collector, jaeger = pipeline(recordings["dev"])
    peers = [collector, jaeger]
    jaeger_config, collector_config = on_loopback(jaeger, peers), on_loopback(collector, peers)
    started = [start("jaeger", jaeger_config, tmp_path, jaeger.port(16686))]
    try:
        started.append(start("otelcol", collector_config, tmp_path, collector.port(4318)))
        yield collector, jaeger
    finally:
        for process in reversed(started):
            stop(process)


def test_a_kong_span_reaches_jaeger_and_is_found_by_service_and_by_the_request_ids(
    dev_pipeline: tuple[Process, Process], recordings: dict[str, Recording]
) -> None:
    collector, jaeger = dev_pipeline
    dev = recordings["dev"]
    otel = global_plugin(dev, "opentelemetry")
    assert otel["propagation"]["default_format"] == "w3c" and "w3c" in otel["propagation"]["extract"]
    # The client's request: W3C trace context, and the ids correlation-id and request-transformer set.
    trace_id, client_span, kong_span = secrets.token_bytes(16), secrets.token_bytes(8), secrets.token_bytes(8)
    request_id, correlation_id = f"req-{secrets.token_hex(6)}", f"{secrets.token_hex(8)}#1"
    headers = [
        ["traceparent", f"00-{trace_id.hex()}-{client_span.hex()}-01"],
        ["X-Correlation-ID", correlation_id],
        ["X-Request-ID", request_id],
    ]
    ids = span_attributes(global_plugin(dev, "trace-headers"), headers)
    assert set(ids.values()) == {request_id, correlation_id}
    # Kong's request span continues the client's trace (extract w3c), with Kong's own attributes.
    now = time.time_ns()
    span = Span(
        trace_id=trace_id,
        span_id=kong_span,
        parent_span_id=client_span,
        name="kong",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=now - 3_000_000,
        end_time_unix_nano=now,
        attributes=attributes(
            {
                "http.method": "POST",
                "http.url": "https://api.example.com/v1/chat",
                "http.host": "api.example.com",
                "http.scheme": "https",
                "http.flavor": "1.1",
                "http.client_ip": "203.0.113.7",
                "net.peer.ip": "10.0.3.7",
                "kong.request.id": secrets.token_hex(16),
                "http.status_code": 200,
                **ids,
            }
        ),
    )
    # Sent where the plugin sends it: traces_endpoint, through the collector's Service.
    endpoint = SERVICE.match(otel["traces_endpoint"])
    assert endpoint, otel["traces_endpoint"]
    scheme, service, namespace, port, path = endpoint.groups()
    container_port = collector.service_port(service, namespace, int(port))
    assert container_port is not None, f"{otel['traces_endpoint']} is not the collector's Service"
    kong_version = dev.named("kong-deployment").pod_spec["containers"][0]["image"].rsplit(":", 1)[1]
    assert scheme == "http"
    status, _ = request(
        collector.port(container_port),
        path,
        [("Content-Type", "application/x-protobuf"), *otel.get("headers", {}).items()],
        kong_export(otel, kong_version, span),
    )
    assert status == 200
    # Found through Jaeger's query API, by service and by each id, within the batching delays.
    service_name = otel["resource_attributes"]["service.name"]
    query_port = jaeger.port(16686)

    def found(tag: str, value: str) -> list[dict[str, Any]]:
        params = {"service": service_name, "tags": json.dumps({tag: value}), "lookback": "1h", "limit": "5"}
        status, answer = request(query_port, f"/api/traces?{urllib.parse.urlencode(params)}", [])
        return list(answer["data"] or []) if status == 200 else []

    for tag, value in ids.items():
        traces = until(lambda tag=tag, value=value: found(tag, value), timeout=30)
        assert [t["traceID"] for t in traces] == [trace_id.hex()], (tag, traces)
    stored = traces[0]["spans"][0]
    assert stored["spanID"] == kong_span.hex() and stored["operationName"] == "kong"
    assert {"refType": "CHILD_OF", "traceID": trace_id.hex(), "spanID": client_span.hex()} in stored["references"]
    assert traces[0]["processes"][stored["processID"]]["serviceName"] == service_name
    status, answer = request(query_port, "/api/services", [])
    assert service_name in answer["data"]
