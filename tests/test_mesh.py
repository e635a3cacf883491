"""ServiceMesh: Kuma release, STRICT mTLS in prod, deny-by-default permissions derived from the
catalogue, resilience policies, tracing, access logs, injection, and bad mesh config."""

from __future__ import annotations

from typing import Any

from components.models.base import name_hint
from tests.harness import RecordedResource, Recording, platform_object, refusal, run_program

KUMA = "kubernetes:kuma.io/v1alpha1"
MTP = f"{KUMA}:MeshTrafficPermission"
KONG = {"app.kubernetes.io/name": "kong", "app.kubernetes.io/instance": "kong", "k8s.kuma.io/namespace": "kong"}


def policy(run: Recording, kind: str, name: str) -> RecordedResource:
    return next(r for r in run.of_type(f"{KUMA}:{kind}") if r.metadata["name"] == name)


def permissions(run: Recording) -> dict[str, tuple[dict[str, str], list[tuple[dict[str, str], str]]]]:
    """target name -> (target tags, [(source tags, action)])"""
    return {
        p.metadata["name"].removeprefix("allow-"): (
            p.spec["targetRef"]["tags"],
            [(f["targetRef"].get("tags"), f["default"]["action"]) for f in p.spec["from"]],
        )
        for p in run.of_type(MTP)
    }


def test_control_plane_release(recordings: dict[str, Recording]) -> None:
    release = recordings["prod"].one("kubernetes:helm.sh/v3:Release", "mesh-release")
    assert (release.inputs["chart"], release.inputs["version"]) == ("kuma", "2.14.3")
    values = release.inputs["values"]
    assert values["controlPlane"]["defaults"]["skipMeshCreation"] is True
    assert values["experimental"]["sidecarContainers"] is True
    assert values["cni"]["enabled"] is True
    assert values["controlPlane"]["envVars"]["KUMA_DEFAULTS_CREATE_MESH_ROUTING_RESOURCES"] == "false"


def test_mtls_is_strict_in_prod_and_may_be_permissive_in_dev(recordings: dict[str, Recording]) -> None:
    for stack, mode in (("prod", "STRICT"), ("dev", "PERMISSIVE")):
        mesh = recordings[stack].one(f"{KUMA}:Mesh")
        mtls = mesh.spec["mtls"]
        [backend] = mtls["backends"]
        assert mtls["enabledBackend"] == backend["name"] == "ca-1"
        assert (backend["type"], backend["mode"]) == ("builtin", mode)
        assert backend["dpCert"] == {"rotation": {"expiration": "24h"}}


def test_every_routed_backend_has_exactly_the_permissions_it_needs(recordings: dict[str, Recording]) -> None:
    found = permissions(recordings["prod"])
    monitoring = ({"k8s.kuma.io/namespace": "monitoring"}, "Allow")
    kong = (KONG, "Allow")
    chat_backend = {"app": "llm-router", "k8s.kuma.io/namespace": "ai-services"}
    assert found["chat"] == (chat_backend, [kong, monitoring])
    # chat's backend calls embeddings (backend.calls), so embeddings also admits it.
    assert found["embeddings"] == (
        {"app": "embeddings", "k8s.kuma.io/namespace": "ai-services"},
        [kong, (chat_backend, "Allow"), monitoring],
    )
    assert found["batch"][0] == {"app": "batch-gateway", "k8s.kuma.io/namespace": "ai-batch"}
    # AI upstreams that Kong's ai-router sends to, by Kuma service tag.
    assert found["gpt-large-8080"] == ({"kuma.io/service": "gpt-large_ai-services_svc_8080"}, [kong])
    assert {"small-model-a-8080", "small-model-b-8080", "llama-70b-8080"} <= set(found)


def test_apis_sharing_a_backend_share_one_permission() -> None:
    def add_chat_v2(platform: dict[str, Any]) -> None:
        apis = platform["catalogue"]["apis"]
        chat = next(api for api in apis if api["name"] == "chat")
        apis.append({**chat, "name": "chat-v2", "paths": ["/v2/chat"], "backend": {**chat["backend"], "calls": []}})
        next(api for api in apis if api["name"] == "batch")["backend"]["calls"] = ["chat-v2", "chat"]

    run = run_program("prod", mutate=add_chat_v2)
    assert run.error is None, run.error
    found = permissions(run)
    assert "chat-v2" not in found
    chat_backend, sources = found["chat"]
    assert chat_backend == {"app": "llm-router", "k8s.kuma.io/namespace": "ai-services"}
    batch_backend = found["batch"][0]
    # batch calls both APIs on that backend: admitted once.
    assert [tags for tags, _ in sources].count(batch_backend) == 1
    assert len(run.of_type(MTP)) == len(permissions(run_program("prod")))


def test_nothing_allows_all(recording: Recording) -> None:
    for permission in recording.of_type(MTP):
        assert permission.spec["targetRef"]["kind"] != "Mesh", permission.name
        for source in permission.spec["from"]:
            assert source["targetRef"]["kind"] != "Mesh" and source["targetRef"]["tags"], permission.name


def test_resilience_defaults_and_overrides(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    retry = policy(run, "MeshRetry", "retry-defaults").spec
    assert retry["targetRef"] == {"kind": "Mesh"}
    http = retry["to"][0]["default"]["http"]
    assert http["numRetries"] == 2 and http["perTryTimeout"] == "5s"
    assert "ConnectFailure" in http["retryOn"]
    breaker = policy(run, "MeshCircuitBreaker", "circuit-breaker-defaults").spec["to"][0]["default"]
    assert breaker["outlierDetection"]["detectors"] == {"totalFailures": {"consecutive": 5}}
    assert breaker["outlierDetection"]["baseEjectionTime"] == "30s"
    assert breaker["connectionLimits"]["maxConnections"] == 1024
    timeout = policy(run, "MeshTimeout", "timeout-defaults").spec["to"][0]["default"]
    assert timeout == {"connectionTimeout": "5s", "idleTimeout": "1h", "http": {"requestTimeout": "60s"}}
    chat = policy(run, "MeshTimeout", "timeout-chat").spec["to"][0]
    assert chat["targetRef"]["tags"] == {"app": "llm-router", "k8s.kuma.io/namespace": "ai-services"}
    assert chat["default"]["http"]["requestTimeout"] == "120s"
    assert policy(run, "MeshRetry", "retry-chat").spec["to"][0]["default"]["http"]["numRetries"] == 1
    assert not [r for r in recordings["dev"].of_type(f"{KUMA}:MeshTimeout") if r.metadata["name"] != "timeout-defaults"]


def test_tracing_access_logs_and_rate_limit(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    trace = policy(run, "MeshTrace", "tracing").spec["default"]
    assert trace["sampling"] == {"overall": 10}
    assert trace["backends"] == [
        {"type": "OpenTelemetry", "openTelemetry": {"endpoint": "otel-collector.observability.svc:4317"}}
    ]
    log = policy(run, "MeshAccessLog", "access-log").spec["from"][0]["default"]["backends"][0]
    assert log["file"]["path"] == "/dev/stdout" and log["file"]["format"]["type"] == "Json"
    assert {"key": "request_id", "value": "%REQ(X-REQUEST-ID)%"} in log["file"]["format"]["json"]
    rate = policy(run, "MeshRateLimit", "rate-limit").spec["from"][0]["default"]["local"]["http"]
    assert rate["requestRate"] == {"num": 2000, "interval": "1s"}
    assert recordings["dev"].of_type(f"{KUMA}:MeshRateLimit") == []


def test_policies_live_in_the_mesh_namespace_after_the_mesh(recording: Recording) -> None:
    mesh = recording.one(f"{KUMA}:Mesh")
    release = [r for r in recording.resources if r.name == "mesh-release"]
    for resource in recording.resources:
        if resource.type.startswith(KUMA) and resource.kind != "Mesh":
            assert resource.metadata["namespace"] == "kuma-system"
            assert resource.labels["kuma.io/mesh"] == "default"
            assert mesh.urn in resource.dependencies
            assert all(r.urn in resource.dependencies for r in release)


def test_injection_labels_and_jobs_that_complete(recording: Recording) -> None:
    namespaces = {n.metadata["name"]: n.labels for n in recording.of_type("kubernetes:core/v1:Namespace")}
    assert namespaces["kong"]["kuma.io/sidecar-injection"] == "enabled"
    assert namespaces["ai-services"]["kuma.io/sidecar-injection"] == "enabled"
    assert namespaces["databases"]["kuma.io/sidecar-injection"] == "disabled"
    gateway = recording.named("kong-deployment")
    assert gateway.spec["template"]["metadata"]["annotations"]["kuma.io/gateway"] == "enabled"
    for job in recording.of_type("kubernetes:batch/v1:Job"):
        assert job.spec["template"]["metadata"]["labels"]["kuma.io/sidecar-injection"] == "disabled"
    for service in (r for r in recording.of_type("kubernetes:core/v1:Service") if r.name.startswith("apis-")):
        in_mesh = service.spec.get("type") != "ExternalName"
        assert service.annotations.get("ingress.kubernetes.io/service-upstream") == ("true" if in_mesh else None)
    # Kong starts after the mesh (its injector) is in place, or its pods would run without sidecars.
    assert recording.named("mesh-release").urn in recording.named("kong-migrations-up").dependencies


def _refused(change: Any) -> str:
    return refusal(change)


def test_unknown_service_in_a_permission_is_refused() -> None:
    message = _refused(lambda p: p["catalogue"]["apis"][0]["backend"].update(calls=["billing"]))
    assert "API chat: backend.calls names unknown APIs ['billing'] (mesh permission)" in message


def test_sampling_outside_0_100_is_refused() -> None:
    message = _refused(lambda p: p["mesh"].update(tracingSamplingPercent=150))
    assert "api-platform:platform.mesh: tracingSamplingPercent must be between 0 and 100, got 150" in message


def test_permissive_mtls_is_refused_in_prod() -> None:
    assert "mesh.mtlsMode must be STRICT in prod (got PERMISSIVE)" in _refused(
        lambda p: p["mesh"].update(mtlsMode="PERMISSIVE")
    )


def test_ai_routes_must_name_cluster_services() -> None:
    message = _refused(lambda p: p["catalogue"]["apis"][0]["aiRouting"]["fallback"][0].update(host="10.0.0.7"))
    assert "AI route host '10.0.0.7' must be a cluster Service" in message


def test_unknown_override_is_refused() -> None:
    message = _refused(lambda p: p["mesh"]["overrides"].append({"api": "billing"}))
    assert "mesh.overrides: unknown API 'billing'" in message


def test_two_overrides_for_one_backend_are_refused() -> None:
    def second_override(platform: dict[str, Any]) -> None:
        apis = platform["catalogue"]["apis"]
        chat = next(api for api in apis if api["name"] == "chat")
        apis.append({**chat, "name": "chat-v2", "paths": ["/v2/chat"]})
        platform["mesh"]["overrides"].append({"api": "chat-v2"})

    message = _refused(second_override)
    assert "mesh.overrides: 'chat' and 'chat-v2' route to the same backend (ai-services, {'app': 'llm-router'})" in (
        message
    )


def test_unknown_override_points_at_the_likely_typo() -> None:
    known = [api["name"] for api in platform_object("prod")["catalogue"]["apis"]]
    typo = known[0][:-1] + "x"
    message = _refused(lambda p: p["mesh"]["overrides"].append({"api": typo}))
    assert f"unknown API {typo!r} (did you mean {known[0]!r}" in message


def test_name_hint_samples_a_long_catalogue_instead_of_listing_it() -> None:
    known = {f"service-{index:04d}" for index in range(1000)}
    hint = name_hint("billing", known)
    assert hint == "known: " + ", ".join(sorted(known)[:8]) + ", and 992 more"
    assert name_hint("service-0042x", known).startswith("did you mean 'service-0042'")
    assert name_hint("billing", set()) == "known: none"


def test_mesh_operator_can_be_left_to_the_platform_team() -> None:
    run = run_program("prod", mutate=lambda p: p.update(installOperators=False))
    assert run.error is None
    assert not [r for r in run.resources if r.name == "mesh-release"]
    assert run.one(f"{KUMA}:Mesh")
