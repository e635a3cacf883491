"""Edge security and traffic: TLS, the API catalogue, consumers and credentials, DDoS guards,
circuit breaking, the custom AI-routing plugin, and the catalogue's bad-input messages."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from components.kong_gateway import plugins_checksum
from stacks.gateway import custom_plugins, lua_libraries
from stacks.loader import ConfigError, validate_platform
from tests.harness import ROOT, RecordedResource, Recording, platform_object, refusal, run_program

KONG_PLUGIN = "kubernetes:configuration.konghq.com/v1:KongPlugin"
CLUSTER_PLUGIN = "kubernetes:configuration.konghq.com/v1:KongClusterPlugin"
CONSUMER = "kubernetes:configuration.konghq.com/v1:KongConsumer"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer"
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"


def ingress(run: Recording, api: str) -> RecordedResource:
    return run.named(f"apis-{api}-ingress")


def plugins_of(run: Recording, api: str) -> dict[str, dict[str, Any]]:
    """plugin name -> config, for the KongPlugins an API's Ingress lists."""
    route = ingress(run, api)
    names = route.annotations["konghq.com/plugins"].split(",")
    found = {}
    for plugin in run.of_type(KONG_PLUGIN):
        if plugin.metadata["name"] in names and plugin.metadata["namespace"] == route.metadata["namespace"]:
            found[plugin.inputs["plugin"]] = plugin.inputs["config"]
    assert len(found) == len(names), (names, found)
    return found


# ---- TLS -----------------------------------------------------------------------------------------


def test_cert_manager_release_and_issuer_chain(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    release = run.one("kubernetes:helm.sh/v3:Release", "cert-manager-release")
    assert (release.inputs["chart"], release.inputs["version"]) == ("cert-manager", "v1.21.1")
    assert release.inputs["values"]["crds"] == {"enabled": True, "keep": True}
    issuers = {i.metadata["name"]: i for i in run.of_type(ISSUER)}
    assert issuers["platform-selfsigned"].spec == {"selfSigned": {}}
    assert issuers["platform-ca"].spec == {"ca": {"secretName": "platform-root-ca"}}
    acme = issuers["letsencrypt"].spec["acme"]
    assert acme["email"] == "platform-team@example.com"
    assert acme["solvers"] == [{"http01": {"ingress": {"ingressClassName": "kong"}}}]
    root = run.named("cert-manager-root-ca")
    assert root.spec["isCA"] is True
    for issuer in issuers.values():  # the webhook must answer first
        assert release.urn in issuer.dependencies
    assert "letsencrypt" not in {i.metadata["name"] for i in recordings["dev"].of_type(ISSUER)}


def test_gateway_certificates_are_ecdsa_rotated_and_renewed_early(recording: Recording) -> None:
    """Every host not pinned is on its namespace's gateway-tls certificate, with a fresh key at renewal."""
    certificates = [c for c in recording.of_type(CERTIFICATE) if c.metadata["name"] == "gateway-tls"]
    pinned = set(recording.outputs["gatewayPins"])
    assert certificates and pinned
    for certificate in certificates:
        assert certificate.spec["privateKey"] == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
        assert (certificate.spec["duration"], certificate.spec["renewBefore"]) == ("2160h", "720h")
        namespace = certificate.metadata["namespace"]
        hosts = {
            rule["host"]
            for r in recording.of_type(INGRESS)
            if r.metadata["namespace"] == namespace
            for rule in r.spec["rules"]
        }
        assert set(certificate.spec["dnsNames"]) == hosts - pinned
    issuer = "letsencrypt" if recording.outputs["environment"] == "prod" else "platform-ca"
    assert {c.spec["issuerRef"]["name"] for c in certificates} == {issuer}


def test_kong_terminates_tls_13_only_and_sees_client_ips(recordings: dict[str, Recording]) -> None:
    env = recordings["prod"].named("kong-deployment").env()
    assert env["KONG_SSL_CIPHER_SUITE"] == "modern"
    assert env["KONG_TRUSTED_IPS"] == "10.0.0.0/8"
    assert env["KONG_REAL_IP_HEADER"] == "X-Forwarded-For"
    assert env["KONG_REAL_IP_RECURSIVE"] == "on"
    assert env["KONG_NGINX_HTTP_CLIENT_HEADER_TIMEOUT"] == "10s"
    assert env["KONG_NGINX_HTTP_CLIENT_BODY_TIMEOUT"] == "30s"


# ---- the catalogue ---------------------------------------------------------------------------------


def test_each_api_is_an_ingress_with_tls_and_https_only(recordings: dict[str, Recording]) -> None:
    route = ingress(recordings["prod"], "chat")
    assert route.metadata["namespace"] == "ai-services"
    assert route.spec["ingressClassName"] == "kong"
    assert route.spec["tls"] == [{"hosts": ["api.example.com"], "secretName": "gateway-tls"}]
    [rule] = route.spec["rules"]
    assert rule["host"] == "api.example.com"
    assert rule["http"]["paths"][0]["path"] == "/v1/chat"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "api-chat", "port": {"number": 80}}
    assert route.annotations["konghq.com/protocols"] == "https"


def test_kong_plugin_keeps_its_top_level_fields(recordings: dict[str, Recording]) -> None:
    """pulumi-kubernetes' Python CustomResource would drop `plugin` and `config` (issue 2363)."""
    plugin = recordings["prod"].of_type(KONG_PLUGIN)[0]
    assert set(plugin.inputs) == {"apiVersion", "kind", "metadata", "plugin", "config"}
    assert plugin.inputs["plugin"] and plugin.inputs["config"]
    assert "spec" not in plugin.inputs


def test_auth_modes(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    jwt = plugins_of(run, "chat")["jwt"]
    assert jwt["key_claim_name"] == "iss" and jwt["claims_to_verify"] == ["exp"]
    assert plugins_of(run, "embeddings")["key-auth"]["hide_credentials"] is True
    oauth2 = plugins_of(run, "batch")["oauth2"]
    assert oauth2["enable_client_credentials"] is True and oauth2["enable_password_grant"] is False
    assert oauth2["scopes"] == ["jobs:write", "jobs:read"] and oauth2["mandatory_scope"] is True
    assert not {"jwt", "key-auth", "oauth2"} & set(plugins_of(run, "models"))


def test_groups_and_rate_limits(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    chat = plugins_of(run, "chat")
    assert chat["acl"] == {"allow": ["ai-users"], "hide_groups_header": True}
    assert chat["rate-limiting"] == {
        "minute": 600,
        "second": 20,
        "limit_by": "consumer",
        "policy": "local",
        "fault_tolerant": True,
    }
    assert plugins_of(run, "models")["rate-limiting"]["limit_by"] == "ip"  # public: by client IP
    assert plugins_of(run, "batch")["request-size-limiting"] == {"allowed_payload_size": 64, "size_unit": "megabytes"}


def test_identical_plugins_are_shared_within_a_namespace(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    names = [(p.metadata["namespace"], p.metadata["name"]) for p in run.of_type(KONG_PLUGIN)]
    assert len(names) == len(set(names))
    shared = set(ingress(run, "chat").annotations["konghq.com/plugins"].split(",")) & set(
        ingress(run, "models").annotations["konghq.com/plugins"].split(",")
    )
    assert any(name.startswith("request-size-limiting-") for name in shared)


def test_circuit_breaking_retries_and_timeouts_per_backend(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    service = run.named("apis-chat-service")
    assert service.spec["selector"] == {"app": "llm-router"}
    assert service.spec["ports"][0]["targetPort"] == 8080
    annotations = service.annotations
    assert annotations["konghq.com/retries"] == "2"
    assert annotations["konghq.com/read-timeout"] == "120000"
    assert annotations["ingress.kubernetes.io/service-upstream"] == "true"
    policy = next(
        p
        for p in run.of_type("kubernetes:configuration.konghq.com/v1beta1:KongUpstreamPolicy")
        if p.metadata["name"] == annotations["konghq.com/upstream-policy"]
    )
    checks = policy.spec["healthchecks"]
    assert checks["active"]["httpPath"] == "/healthz"
    assert checks["passive"]["unhealthy"] == {"httpFailures": 5, "tcpFailures": 3, "timeouts": 5}


def test_global_plugins(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    plugins = {p.inputs["plugin"]: p for p in run.of_type(CLUSTER_PLUGIN)}
    for plugin in plugins.values():
        assert plugin.labels["global"] == "true"
        assert plugin.annotations["kubernetes.io/ingress.class"] == "kong"
    assert plugins["correlation-id"].inputs["config"]["header_name"] == "X-Correlation-ID"
    assert plugins["request-transformer"].inputs["config"]["add"]["headers"] == [
        'X-Request-ID:$(headers["x-correlation-id"])'
    ]
    metrics = plugins["prometheus"].inputs["config"]
    assert all(
        metrics[k] for k in ("status_code_metrics", "latency_metrics", "bandwidth_metrics", "upstream_health_metrics")
    )
    assert plugins["ip-restriction"].inputs["config"]["deny"] == ["192.0.2.0/24"]
    assert "(?i)sqlmap" in plugins["bot-detection"].inputs["config"]["deny"]
    assert "ip-restriction" not in {p.inputs["plugin"] for p in recordings["dev"].of_type(CLUSTER_PLUGIN)}


# ---- consumers -----------------------------------------------------------------------------------


def consumer_secrets(run: Recording, username: str) -> dict[str, RecordedResource]:
    consumer = next(c for c in run.of_type(CONSUMER) if c.inputs["username"] == username)
    secrets = {s.metadata["name"]: s for s in run.of_type("kubernetes:core/v1:Secret")}
    return {name: secrets[name] for name in consumer.inputs["credentials"]}


def test_consumers_and_their_credentials(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    consumer = next(c for c in run.of_type(CONSUMER) if c.inputs["username"] == "web-app")
    assert consumer.annotations["kubernetes.io/ingress.class"] == "kong"
    web = consumer_secrets(run, "web-app")
    jwt = web["web-app-jwt-0"]
    assert jwt.labels["konghq.com/credential"] == "jwt"
    assert jwt.inputs["stringData"]["algorithm"] == "RS256"
    assert jwt.inputs["stringData"]["key"] == "https://login.example.com/"
    assert jwt.inputs["stringData"]["rsa_public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert web["web-app-acl-ai-users"].inputs["stringData"] == {"group": "ai-users"}


def test_api_keys_rotate_by_id(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    keys = {
        name: s
        for name, s in consumer_secrets(run, "analytics-partner").items()
        if s.labels["konghq.com/credential"] == "key-auth"
    }
    assert sorted(keys) == ["analytics-partner-key-2026-10", "analytics-partner-key-2026-11"]
    for secret in keys.values():
        assert secret.is_secret("stringData.key")
    # Dropping the old rotation id revokes only that key.
    revoked = run_program("prod", mutate=lambda p: p["catalogue"]["consumers"][1].update(apiKeyRotations=["2026-11"]))
    assert revoked.error is None
    assert sorted(n for n in consumer_secrets(revoked, "analytics-partner") if "-key-" in n) == [
        "analytics-partner-key-2026-11"
    ]
    assert (
        revoked.named("consumers-analytics-partner-api-key-2026-11").inputs
        == run.named("consumers-analytics-partner-api-key-2026-11").inputs
    )
    assert run.secret_outputs >= {"consumerApiKeys", "consumerOauth2Clients", "consumerJwtPrivateKeys"}
    assert set(run.outputs["consumerApiKeys"]) == {"analytics-partner/2026-10", "analytics-partner/2026-11"}


def test_oauth2_client_and_generated_jwt_key(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    secrets = consumer_secrets(run, "batch-runner")
    oauth2 = secrets["batch-runner-oauth2"]
    assert oauth2.labels["konghq.com/credential"] == "oauth2"
    assert oauth2.inputs["stringData"]["client_id"] == "batch-runner-client"
    assert oauth2.is_secret("stringData.client_secret")
    generated = secrets["batch-runner-jwt-service"]
    assert generated.inputs["stringData"]["rsa_public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    key = run.named("consumers-batch-runner-jwt-key")
    assert (key.inputs["algorithm"], key.inputs["rsaBits"]) == ("RSA", 2048)
    assert run.outputs["consumerOauth2Clients"]["batch-runner"]["clientId"] == "batch-runner-client"
    assert "batch-runner" in run.outputs["consumerJwtPrivateKeys"]


# ---- the AI-routing plugin -------------------------------------------------------------------------


def test_ai_router_is_shipped_to_kong_and_its_jobs(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    config_map = run.named("kong-plugin-ai-router")
    assert set(config_map.inputs["data"]) == {"handler.lua", "schema.lua"}
    assert config_map.inputs["data"]["handler.lua"] == (ROOT / "kong-plugins/ai-router/handler.lua").read_text()
    for workload in ("kong-deployment", "kong-migrations-up", "kong-migrations-finish"):
        resource = run.named(workload)
        assert resource.env()["KONG_PLUGINS"] == "bundled,ai-router,oidc-jwt,opa-authz,trace-headers"
        mounts = {m["mountPath"] for m in resource.container()["volumeMounts"]}
        assert "/opt/kong/plugins/ai-router" in mounts
    assert run.named("kong-deployment").spec["template"]["metadata"]["annotations"]["checksum/plugins"]
    routing = plugins_of(run, "chat")["ai-router"]
    assert routing["header"] == "x-model" and routing["body_field"] == "model"
    assert routing["fallback"] == [
        {"host": "small-model-a.ai-services.svc", "port": 8080, "weight": 3},
        {"host": "small-model-b.ai-services.svc", "port": 8080, "weight": 1},
    ]


def test_the_shipped_lua_sources_restart_kong_when_they_change(recording: Recording) -> None:
    """The checksum covers every plugin and the libraries they share (a changed library restarts Kong)."""
    shipped = {f"/opt/kong/plugins/{name}": files for name, files in custom_plugins().items()}
    shipped |= {f"/opt/{name}": files for name, files in lua_libraries().items()}
    assert "/opt/api_platform" in shipped
    template = recording.named("kong-deployment").spec["template"]
    assert template["metadata"]["annotations"]["checksum/plugins"] == plugins_checksum(shipped)


def test_every_module_our_plugins_require_resolves_through_the_rendered_package_path(
    recordings: dict[str, Recording], stack: str
) -> None:
    """What KONG_LUA_PACKAGE_PATH and the ConfigMap mounts do together: every `require` of one of
    our plugins' modules or of our shared library finds a file the pod has, by Lua's own search
    (each `;`-separated template with `?` replaced by the module's path)."""
    run = recordings[stack]
    config_maps = {o.metadata["name"]: o.inputs["data"] for o in run.of_type("kubernetes:core/v1:ConfigMap")}
    ours = re.compile(
        r'require[ (]"((?:kong\.plugins\.(?:'
        + "|".join(map(re.escape, custom_plugins()))
        + r')|api_platform)\.[\w.-]+)"'
    )
    required = {m for plugin in custom_plugins().values() for source in plugin.values() for m in ours.findall(source)}
    required |= {f"kong.plugins.{name}.{f[:-4]}" for name in custom_plugins() for f in ("handler.lua", "schema.lua")}
    assert len(required) >= 12, required
    for workload in ("kong-deployment", "kong-migrations-up"):
        resource = run.named(workload)
        pod = resource.pod_spec
        kong = resource.container()
        volumes = {v["name"]: v for v in pod["volumes"]}
        files = {
            f"{mount['mountPath']}/{key}"
            for mount in kong["volumeMounts"]
            if "configMap" in volumes[mount["name"]]
            for key in config_maps.get(volumes[mount["name"]]["configMap"]["name"], {})
        }
        templates = [t for t in resource.env()["KONG_LUA_PACKAGE_PATH"].split(";") if t]
        for module in sorted(required):
            found = [t.replace("?", module.replace(".", "/")) for t in templates]
            assert any(f in files for f in found), f"{workload}: require {module!r} finds none of {found}"


def test_a_changed_plugin_restarts_kong() -> None:
    files = {"ai-router": {"handler.lua": "return {}", "schema.lua": "return {}"}}
    changed = {"ai-router": {"handler.lua": "return {PRIORITY = 1}", "schema.lua": "return {}"}}
    assert plugins_checksum(files) != plugins_checksum(changed)
    assert plugins_checksum(files) == plugins_checksum(dict(files))


@pytest.mark.parametrize(
    ("plugin", "minimum_specs"), [("ai-router", 18), ("oidc-jwt", 92), ("opa-authz", 24), ("trace-headers", 8)]
)
def test_plugin_logic_with_busted_on_luajit(plugin: str, minimum_specs: int) -> None:
    """The plugins' specs on LuaJIT; oidc-jwt's with real signatures (openssl, libcrypto)."""
    busted = shutil.which("busted")
    if busted is None:
        pytest.fail("busted is not installed: scripts/setup installs lua-busted, lua-cjson, luajit and openssl")
    result = subprocess.run(
        [busted, "--lua=luajit", "-o", "TAP", "spec"],
        cwd=ROOT / "kong-plugins" / plugin,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not ok" not in result.stdout
    assert result.stdout.count("\nok ") + result.stdout.startswith("ok ") >= minimum_specs


# ---- bad input -----------------------------------------------------------------------------------


def _refused(change: Any) -> str:
    return refusal(lambda platform: change(platform["catalogue"]))


def test_unknown_consumer_group_is_refused() -> None:
    message = _refused(lambda c: c["apis"][0].update(allowedGroups=["admins"]))
    assert "API chat: allowedGroups ['admins'] are not the group of any consumer" in message


def test_invalid_jwt_key_is_refused() -> None:
    message = _refused(lambda c: c["consumers"][0]["jwtKeys"][0].update(publicKey="not a key"))
    assert "consumers[0].jwtKeys[0].publicKey (consumer web-app): is not a PEM public key" in message


def test_non_rsa_jwt_key_is_refused() -> None:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    message = _refused(lambda c: c["consumers"][0]["jwtKeys"][0].update(publicKey=pem))
    assert "is not an RSA public key (RS256 needs RSA)" in message


def test_duplicate_host_and_path_is_refused() -> None:
    message = _refused(lambda c: c["apis"][3].update(paths=["/v1/chat"]))
    assert "API models: api.example.com/v1/chat is already routed by API chat" in message


def test_zero_rate_limit_is_refused() -> None:
    message = _refused(lambda c: c["apis"][1].update(rateLimit={"minute": 0}))
    assert "apis[1].rateLimit.minute (API embeddings): Input should be greater than or equal to 1" in message


def test_letsencrypt_without_email_is_refused() -> None:
    raw = platform_object("prod")
    raw["certManager"].pop("acmeEmail")
    with pytest.raises(ConfigError, match="issuer letsencrypt needs acmeEmail"):
        validate_platform(raw, "Pulumi.prod.yaml")
