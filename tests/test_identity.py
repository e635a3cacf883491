"""OIDC at the gateway and certificate pinning in both directions: clients pin the gateway's pinned
hosts, the gateway pins the CAs of the upstreams it calls outside the mesh."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from components.kong_apis import api_plugins
from stacks.gateway import catalogue_policy, custom_plugins
from stacks.loader import validate_platform
from tests.harness import ROOT, Recording, platform_object, refusal, run_program
from tests.test_edge import CERTIFICATE, CLUSTER_PLUGIN, KONG_PLUGIN, ingress, plugins_of

PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
SECRET = "kubernetes:core/v1:Secret"
SERVICE = "kubernetes:core/v1:Service"
UPSTREAM_POLICY = "kubernetes:configuration.konghq.com/v1beta1:KongUpstreamPolicy"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
PLUGINS = ROOT / "kong-plugins"


def api_of(platform: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(next(a for a in platform["catalogue"]["apis"] if a["name"] == name))


def edit_api(name: str, edit: Any) -> Any:
    """A platform-object change that applies `edit` to the API called `name`."""

    def change(platform: dict[str, Any]) -> None:
        edit(next(a for a in platform["catalogue"]["apis"] if a["name"] == name))

    return change


def openssl_pin(public_key_pem: str) -> str:
    """pin-sha256 the way the README tells clients to compute it, with the openssl command line."""
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"], input=public_key_pem.encode(), capture_output=True, check=True
    ).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der, capture_output=True, check=True)
    return base64.b64encode(digest.stdout).decode()


def certificate_public_key(pem: str) -> str:
    return subprocess.run(
        ["openssl", "x509", "-pubkey", "-noout"], input=pem.encode(), capture_output=True, check=True
    ).stdout.decode()


def check_config(plugin: str, config: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    luajit = shutil.which("luajit")
    if luajit is None:
        pytest.fail("luajit is not installed: scripts/setup installs it")
    return subprocess.run(
        [luajit, "check_config.lua", plugin],
        input=json.dumps(config),
        cwd=PLUGINS,
        capture_output=True,
        text=True,
        check=False,
    )


# ---- OIDC ------------------------------------------------------------------------------------------


def test_an_oidc_api_validates_tokens_of_its_identity_provider(recordings: dict[str, Recording]) -> None:
    plugins = plugins_of(recordings["prod"], "assistant")
    assert plugins["oidc-jwt"] == {
        "issuer": "https://login.example.com/realms/platform",
        "audiences": ["assistant-api"],
        "required_scopes": ["assistant:invoke"],
        "required_claims": {},
        "groups_claim": "groups",
        "leeway_seconds": 60,
        "jwks_cache_seconds": 3600,
        "min_refresh_seconds": 30,
        "hide_credentials": False,  # a backend in the cluster may read the caller's token
    }
    # The token's groups decide the ACL, even when consumer_claim attaches a Kong consumer (Kong's acl
    # reads a consumer's own groups unless always_use_authenticated_groups; the oidc-jwt specs
    # exercise that rule); its subject is the credential rate limiting counts by.
    assert plugins["acl"] == {
        "allow": ["ml-engineers"],
        "hide_groups_header": True,
        "always_use_authenticated_groups": True,
    }
    assert plugins["rate-limiting"]["limit_by"] == "consumer"
    assert not {"jwt", "key-auth", "oauth2"} & set(plugins)


def test_the_organisations_tokens_never_reach_an_external_upstream(recordings: dict[str, Recording]) -> None:
    for stack in ("dev", "prod"):
        assert plugins_of(recordings[stack], "hosted-llm")["oidc-jwt"]["hide_credentials"] is True, stack


def test_hide_credentials_can_be_set_either_way() -> None:
    for api, value in (("hosted-llm", False), ("assistant", True)):
        raw = platform_object("prod")
        edit_api(api, lambda a, v=value: a["oidc"].update(hideCredentials=v))(raw)
        cfg = validate_platform(raw, "Pulumi.prod.yaml")
        plugins = dict(api_plugins(cfg.catalogue.by_name[api], cfg.catalogue, catalogue_policy(cfg)))
        assert plugins["oidc-jwt"]["hide_credentials"] is value, api


def test_only_oidc_apis_let_authenticated_groups_override_consumer_groups(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    acls = 0
    for route in run.of_type(INGRESS):
        plugins = plugins_of(run, route.name.removeprefix("apis-").removesuffix("-ingress"))
        if "acl" in plugins:
            acls += 1
            assert plugins["acl"].get("always_use_authenticated_groups", False) is ("oidc-jwt" in plugins), route.name
    assert acls >= 2


def test_every_custom_plugin_configuration_passes_the_plugins_schema(recording: Recording) -> None:
    """What Kong would check at sync, run on each declared configuration with the plugin's own schema.lua."""
    checked = set()
    for plugin in [*recording.of_type(KONG_PLUGIN), *recording.of_type(CLUSTER_PLUGIN)]:
        name = plugin.inputs["plugin"]
        if name in custom_plugins():
            result = check_config(name, plugin.inputs["config"])
            assert result.returncode == 0, (plugin.name, result.stdout, result.stderr)
            checked.add(name)
    assert checked == {"ai-router", "oidc-jwt", "opa-authz", "trace-headers"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"issuer": "http://login.example.com/"}, "config.issuer: must match ^https://"),
        ({"audiences": []}, "config.audiences: length must be at least 1"),
        ({"leeway_seconds": 301}, "config.leeway_seconds: value should be between 0 and 300"),
        ({"jwks_url": "https://x"}, "config.jwks_url: unknown field"),
    ],
)
def test_the_schema_check_refuses_what_kong_would(
    recordings: dict[str, Recording], change: dict[str, Any], message: str
) -> None:
    config = {**plugins_of(recordings["prod"], "assistant")["oidc-jwt"], **change}
    result = check_config("oidc-jwt", config)
    assert result.returncode == 1
    assert message in result.stdout


def test_the_oidc_plugin_and_every_module_it_requires_reach_kong(recordings: dict[str, Recording]) -> None:
    run = recordings["prod"]
    shipped = run.named("kong-plugin-oidc-jwt").inputs["data"]
    assert "oidc-jwt" in run.named("kong-deployment").env()["KONG_PLUGINS"].split(",")
    # KONG_LUA_PACKAGE_PATH=/opt/?.lua and the mount at /opt/kong/plugins/oidc-jwt: a require of
    # kong.plugins.oidc-jwt.X loads X.lua from the ConfigMap.
    assert run.named("kong-deployment").env()["KONG_LUA_PACKAGE_PATH"].startswith("/opt/?.lua;")
    required = {
        module
        for source in shipped.values()
        for module in re.findall(r'require "kong\.plugins\.oidc-jwt\.(\w+)"', source)
    }
    assert required == {"crypto", "jwk", "jwt", "keys"}
    # The shared library (api_platform.headers) is shipped and mounted where /opt/?.lua finds it.
    libraries = {m for source in shipped.values() for m in re.findall(r'require "api_platform\.(\w+)"', source)}
    assert libraries == {"headers"}
    library = run.named("kong-lua-api-platform").inputs["data"]
    assert library == {"headers.lua": (PLUGINS / "lib" / "api_platform" / "headers.lua").read_text()}
    for workload in ("kong-deployment", "kong-migrations-up"):
        pod = run.named(workload).pod_spec
        mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes[mounts["/opt/api_platform"]]["configMap"]["name"] == "kong-lua-api-platform", workload
    # keys.lua fetches the provider's keys with ssl_verify: Kong must trust the public CAs too.
    assert "system" in run.named("kong-deployment").env()["KONG_LUA_SSL_TRUSTED_CERTIFICATE"].split(",")
    assert {f"{m}.lua" for m in required} | {"handler.lua", "schema.lua"} == set(shipped)
    for name, source in shipped.items():
        assert source == (PLUGINS / "oidc-jwt" / name).read_text()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            edit_api("assistant", lambda a: a["oidc"].update(issuer="http://login.example.com/")),
            "(API assistant): 'http://login.example.com/' is not an https issuer URL",
        ),
        (
            edit_api("assistant", lambda a: a["oidc"].update(audiences=[])),
            "catalogue.apis[4].oidc.audiences (API assistant): List should have at least 1 item",
        ),
        (
            edit_api("assistant", lambda a: a["oidc"].update(audiences=[""])),
            "(API assistant): String should have at least 1 character",
        ),
        (
            edit_api("assistant", lambda a: a.pop("oidc")),
            "API assistant: auth oidc and the oidc settings (issuer, audiences) go together",
        ),
        (
            edit_api("chat", lambda a: a.update(oidc={"issuer": "https://login.example.com/", "audiences": ["x"]})),
            "API chat: auth oidc and the oidc settings (issuer, audiences) go together",
        ),
    ],
)
def test_bad_oidc_settings_are_refused_naming_the_api(change: Any, message: str) -> None:
    assert message in refusal(change)


# ---- clients pin the gateway -----------------------------------------------------------------------


def test_a_pinned_host_is_served_with_a_key_the_program_owns(recording: Recording) -> None:
    host = next(iter(recording.outputs["gatewayPins"]))
    keys = ["assistant-2026a", "assistant-2026b"]
    for key_id in keys:
        key = recording.named(f"pinned-hosts-{host}-{key_id}")
        assert key.type == PRIVATE_KEY
        assert (key.inputs["algorithm"], key.inputs["ecdsaCurve"]) == ("ECDSA", "P256")
        name = f"pinned-{host}-{key_id}"
        secret = recording.named(f"pinned-hosts-ai-services-{host}-{key_id}-secret")
        assert (secret.metadata["name"], secret.metadata["namespace"]) == (name, "ai-services")
        # Opaque with the key only: cert-manager keeps the type and adds tls.crt for this key.
        assert secret.inputs["type"] == "Opaque"
        private_pem = recording.computed[key.name]["privateKeyPem"]
        assert secret.inputs["data"] == {"tls.key": base64.b64encode(private_pem.encode()).decode()}
        assert secret.is_secret("data")
        certificate = recording.named(f"pinned-hosts-ai-services-{host}-{key_id}-certificate")
        assert certificate.spec["secretName"] == name and certificate.spec["dnsNames"] == [host]
        assert certificate.spec["privateKey"] == {
            "algorithm": "ECDSA",
            "size": 256,
            "encoding": "PKCS1",
            "rotationPolicy": "Never",
        }
        assert secret.urn in certificate.dependencies
    # The first key is served; the gateway-wide certificate leaves the host alone.
    route = ingress(recording, "assistant")
    assert route.spec["tls"] == [{"hosts": [host], "secretName": f"pinned-{host}-{keys[0]}"}]
    for certificate in recording.of_type(CERTIFICATE):
        if certificate.metadata["name"] == "gateway-tls":
            assert host not in certificate.spec["dnsNames"]


def test_clients_get_the_pins_of_every_key(recording: Recording) -> None:
    [(host, pins)] = recording.outputs["gatewayPins"].items()
    public = {
        key_id: recording.computed[f"pinned-hosts-{host}-{key_id}"]["publicKeyPem"]
        for key_id in ("assistant-2026a", "assistant-2026b")
    }
    assert pins == {"active": "assistant-2026a", "pins": {k: openssl_pin(pem) for k, pem in public.items()}}
    assert len(set(pins["pins"].values())) == 2
    assert "gatewayPins" not in recording.secret_outputs  # public keys: nothing to hide


def test_rotating_to_the_backup_switches_the_served_secret_and_nothing_else(recordings: dict[str, Recording]) -> None:
    before = recordings["prod"]

    def rotate(platform: dict[str, Any]) -> None:
        [pinned] = platform["catalogue"]["pinnedHosts"]
        pinned["keys"] = list(reversed(pinned["keys"]))

    after = run_program("prod", mutate=rotate)
    assert after.error is None
    assert {r.name for r in after.resources} == {r.name for r in before.resources}
    changed = {r.name for r in after.resources if r.custom and r.inputs != before.named(r.name).inputs}
    assert changed == {"apis-assistant-ingress"}
    host = "assistant.api.example.com"
    served = [{"hosts": [host], "secretName": f"pinned-{host}-assistant-2026b"}]
    assert ingress(after, "assistant").spec["tls"] == served
    assert after.outputs["gatewayPins"][host]["active"] == "assistant-2026b"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: p["catalogue"]["pinnedHosts"][0].update(host="pinned.example.org"),
            "pinnedHosts: pinned.example.org is not a host of any API",
        ),
        (
            lambda p: p["catalogue"]["pinnedHosts"][0].update(keys=["only-one"]),
            "catalogue.pinnedHosts[0].keys: List should have at least 2 items",
        ),
        (
            lambda p: p["catalogue"]["pinnedHosts"][0].update(keys=["a", "a"]),
            "pinned host assistant.api.example.com: key ids repeat",
        ),
    ],
)
def test_bad_pinned_hosts_are_refused(change: Any, message: str) -> None:
    assert message in refusal(change)


# ---- the gateway pins its external upstreams ----------------------------------------------------------


def test_an_external_upstream_is_called_over_tls_verified_against_its_pinned_ca(recording: Recording) -> None:
    service = recording.named("apis-hosted-llm-service")
    assert service.spec["type"] == "ExternalName"
    assert service.spec["externalName"] == "inference.partner.example.net"
    assert service.spec["ports"] == [{"name": "https", "port": 443, "protocol": "TCP"}]
    annotations = service.annotations
    assert annotations["konghq.com/protocol"] == "https"
    assert annotations["konghq.com/tls-verify"] == "true"
    assert annotations["konghq.com/tls-verify-depth"] == "1"
    assert annotations["konghq.com/host-header"] == "inference.partner.example.net"
    assert "ingress.kubernetes.io/service-upstream" not in annotations  # not through the mesh
    [secret_name] = annotations["konghq.com/ca-certificates-secret"].split(",")
    [ca] = [s for s in recording.of_type(SECRET) if s.metadata["name"] == secret_name]
    assert ca.metadata["namespace"] == service.metadata["namespace"]
    assert ca.labels["konghq.com/ca-cert"] == "true"
    assert ca.annotations["kubernetes.io/ingress.class"] == "kong"
    pem = ca.inputs["stringData"]["cert"]
    assert str(uuid.UUID(ca.inputs["stringData"]["id"])) == ca.inputs["stringData"]["id"]
    configured = api_of(platform_object(recording.outputs["environment"]), "hosted-llm")["backend"]["external"]
    assert pem.strip() == configured["caCertificates"][0].strip()
    assert configured["pins"] == [openssl_pin(certificate_public_key(pem))]
    # The client's Host is not the upstream's name; the upstream is not probed, only watched.
    route = ingress(recording, "hosted-llm")
    assert route.annotations["konghq.com/preserve-host"] == "false"
    assert route.spec["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] == {"number": 443}
    policy_name = annotations["konghq.com/upstream-policy"]
    [policy] = [p for p in recording.of_type(UPSTREAM_POLICY) if p.metadata["name"] == policy_name]
    assert set(policy.spec["healthchecks"]) == {"passive"}
    # Nothing in the mesh to permit.
    assert not [r for r in recording.resources if r.kind == "MeshTrafficPermission" and "hosted-llm" in r.name]


def _certificate(ca: bool = True, days: int = 365, start: datetime | None = None) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA" if ca else "test server")])
    start = start or datetime.now(UTC) - timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _external(edit: Any) -> Any:
    return edit_api("hosted-llm", lambda a: edit(a["backend"]))


OTHER_CA = _certificate()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            _external(lambda b: b["external"].update(pins=["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="])),
            "backend.external (API hosted-llm): pin 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU= matches none of "
            "caCertificates (their pins: VZ6Bb1sA94oAMQsTUtoSrueHnSyKGRxMGm/9szB12Ww=)",
        ),
        (
            _external(lambda b: b["external"].update(pins=["d6a770ba38583ed4bb4525bd96e50461655d2758"])),
            "is not a SHA-256 SPKI pin",
        ),
        (
            _external(lambda b: b["external"].pop("pins")),
            "API hosted-llm: backend.external.pins are required in prod",
        ),
        (
            _external(lambda b: b["external"].update(caCertificates=[*b["external"]["caCertificates"], OTHER_CA])),
            "caCertificates: CN=test CA is not pinned",
        ),
        (
            _external(lambda b: b["external"].update(caCertificates=[_certificate(ca=False)], pins=[])),
            "CN=test server is not a CA certificate",
        ),
        (
            _external(
                lambda b: b["external"].update(
                    caCertificates=[_certificate(days=10, start=datetime(2020, 1, 1, tzinfo=UTC))], pins=[]
                )
            ),
            "CN=test CA expired on 2020-01-11",
        ),
        (
            _external(lambda b: b["external"].update(caCertificates=[OTHER_CA + OTHER_CA], pins=[])),
            "holds 2 PEM certificates; give one certificate per entry",
        ),
        (
            _external(lambda b: b.update(selector={"app": "x"})),
            "set exactly one of selector (pods in the cluster) and external",
        ),
        (
            _external(lambda b: b["external"].update(host="llm.ai-services.svc")),
            "external host 'llm.ai-services.svc' is a cluster Service",
        ),
        (
            edit_api("chat", lambda a: a["backend"].update(calls=["hosted-llm"])),
            "API chat: backend.calls names ['hosted-llm'], whose backends are external",
        ),
        (
            lambda p: p["mesh"]["overrides"].append({"api": "hosted-llm", "retry": {"numRetries": 1}}),
            "mesh.overrides: API 'hosted-llm' has an external backend",
        ),
        (
            lambda p: p["catalogue"]["apis"].append(
                {
                    **api_of(p, "hosted-llm"),
                    "name": "hosted-llm-batch",
                    "paths": ["/v1/hosted-batch"],
                    "backend": {**api_of(p, "hosted-llm")["backend"], "namespace": "ai-batch"},
                }
            ),
            "API hosted-llm-batch: its CA certificate",
        ),
    ],
)
def test_bad_external_upstreams_are_refused_naming_the_api(change: Any, message: str) -> None:
    assert message in refusal(change)


def test_dev_may_trust_an_unpinned_ca() -> None:
    run = run_program("dev", mutate=_external(lambda b: b["external"].pop("pins")))
    assert run.error is None
    assert run.named("apis-hosted-llm-service").annotations["konghq.com/tls-verify"] == "true"
