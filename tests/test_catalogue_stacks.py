"""Teams' catalogue stacks (project api-catalogue): deployed on a platform stack through its
`catalogueContext` output, confined to the namespaces the platform registered for them, and
producing the same objects the platform's own catalogue would from the same configuration."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from stacks.config import CatalogueStackConfig
from stacks.loader import CATALOGUE, ConfigError, check_keys, validate
from tests.harness import ROOT, Recording, catalogue_object, refusal, run_catalogue, run_program
from tests.policy_runner import run_pack

MTP = "kubernetes:kuma.io/v1alpha1:MeshTrafficPermission"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
KONG_PLUGIN = "kubernetes:configuration.konghq.com/v1:KongPlugin"


@pytest.fixture(scope="module")
def catalogues(recordings: dict[str, Recording]) -> dict[str, Recording]:
    runs = {env: run_catalogue(f"{env}-research", recordings[env].outputs) for env in ("dev", "prod")}
    for env, run in runs.items():
        assert run.error is None, f"{env}-research failed under mocks: {run.error}"
    return runs


def test_the_platform_exports_what_a_catalogue_needs(recordings: dict[str, Recording]) -> None:
    context = recordings["prod"].outputs["catalogueContext"]
    assert context == {
        "environment": "prod",
        "ingressClass": "kong",
        "issuer": "letsencrypt",
        "certificateDuration": "2160h",
        "renewBefore": "720h",
        "meshNamespace": "kuma-system",
        "meshName": "default",
        "gatewaySources": [
            {
                "targetRef": {
                    "kind": "MeshSubset",
                    "tags": {
                        "app.kubernetes.io/instance": "kong",
                        "app.kubernetes.io/name": "kong",
                        "k8s.kuma.io/namespace": "kong",
                    },
                },
                "default": {"action": "Allow"},
            }
        ],
        "monitoringSources": [
            {
                "targetRef": {"kind": "MeshSubset", "tags": {"k8s.kuma.io/namespace": "monitoring"}},
                "default": {"action": "Allow"},
            }
        ],
        "catalogues": {"research": ["research"]},
        "policy": {"namespace": "kong", "port": 8181, "configMaps": {"research": "kong-opa-apis-research"}},
    }


def test_a_catalogue_stack_writes_only_to_its_namespaces(catalogues: dict[str, Recording]) -> None:
    for run in catalogues.values():
        # Its API policies go to the one ConfigMap the platform reserved for it, which Kong's OPA mounts.
        policies = run.one(CONFIG_MAP, "policies-config-map")
        assert (policies.metadata["namespace"], policies.metadata["name"]) == ("kong", "kong-opa-apis-research")
        namespaced = {
            o.metadata.get("namespace")
            for o in run.kubernetes_objects()
            if o.kind != "MeshTrafficPermission" and o is not policies
        }
        assert namespaced == {"research"}
        assert not [o for o in run.kubernetes_objects() if o.kind == "KongClusterPlugin"]  # the platform's
        assert {o.metadata["namespace"] for o in run.of_type(MTP)} == {"kuma-system"}


def test_its_permissions_add_the_platforms_sources_to_its_own(
    recordings: dict[str, Recording], catalogues: dict[str, Recording]
) -> None:
    run, context = catalogues["prod"], recordings["prod"].outputs["catalogueContext"]
    permissions = {o.metadata["name"]: o for o in run.of_type(MTP)}
    assert set(permissions) == {"allow-research-papers", "allow-research-embeddings-lab"}
    lab = permissions["allow-research-embeddings-lab"]
    assert lab.spec["targetRef"] == {
        "kind": "MeshSubset",
        "tags": {"app": "embeddings-lab", "k8s.kuma.io/namespace": "research"},
    }
    caller = {"kind": "MeshSubset", "tags": {"app": "papers", "k8s.kuma.io/namespace": "research"}}
    assert lab.spec["from"] == [
        {"targetRef": caller, "default": {"action": "Allow"}},  # papers calls embeddings-lab
        *context["gatewaySources"],
        *context["monitoringSources"],
    ]
    assert lab.labels["kuma.io/mesh"] == "default"


def test_the_same_catalogue_in_the_platform_stack_makes_the_same_kong_objects(
    recordings: dict[str, Recording],
) -> None:
    """One composition (stacks.catalogue) for both: moving a catalogue between stacks changes no
    routing object (only the stack's own labels). Its policies stay behind: a policy's package
    names its catalogue (apis.research.*), so moving them is a rename."""
    team = catalogue_object("prod-research")
    for api in team["catalogue"]["apis"]:
        api.pop("policy", None)

    def inline(platform: dict[str, Any]) -> None:
        platform["catalogues"] = []
        platform["catalogue"]["apis"] += team["catalogue"]["apis"]
        platform["catalogue"]["consumers"] += team["catalogue"]["consumers"]

    platform = run_program("prod", mutate=inline)
    assert platform.error is None
    in_platform = {k: v for k, v in routing_objects(platform).items() if k[1] == "research"}
    without_policies = run_catalogue("prod-research", recordings["prod"].outputs, catalogue=team)
    assert in_platform and routing_objects(without_policies) == in_platform


def routing_objects(run: Recording) -> dict[tuple[str, str, str], dict[str, Any]]:
    kinds = {"Service", "Ingress", "KongPlugin", "KongUpstreamPolicy", "Certificate"}
    found = {}
    for o in run.kubernetes_objects():
        if o.kind in kinds:
            inputs = copy.deepcopy(o.inputs)
            inputs["metadata"].pop("labels")
            found[(o.kind, o.metadata["namespace"], o.metadata["name"])] = inputs
    return found


def test_a_catalogue_stack_passes_the_policy_pack(catalogues: dict[str, Recording]) -> None:
    assert run_pack(catalogues["prod"].resources, "prod") == {}
    assert run_pack(catalogues["dev"].resources, "dev") == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["catalogue"]["apis"][0]["backend"].update(namespace="ai-services"),
            "namespace ai-services is not one the platform gave catalogue research (it owns: research)",
        ),
        (
            lambda c: [c.update(name="billing"), c["catalogue"]["apis"][0].pop("policy")],
            "catalogue billing is not registered on organization/api-platform/prod (registered: research)",
        ),
        (lambda c: c.update(environment="dev", protection={}), "environment is dev, the platform stack's is prod"),
        (
            lambda c: c.update(consumersNamespace="kong"),
            "namespace kong is not one the platform gave catalogue research",
        ),
    ],
)
def test_the_platform_refuses_a_catalogue_before_anything_is_registered(
    recordings: dict[str, Recording], change: Any, message: str
) -> None:
    run = run_catalogue("prod-research", recordings["prod"].outputs, mutate=change)
    assert run.error is not None
    assert "Pulumi.prod-research.yaml: refused by the platform stack organization/api-platform/prod:" in str(run.error)
    assert message in str(run.error)
    assert run.resources == []


def test_a_catalogue_with_policies_needs_the_platforms_policy_engine(recordings: dict[str, Recording]) -> None:
    outputs = copy.deepcopy(recordings["prod"].outputs)
    outputs["catalogueContext"]["policy"] = None
    run = run_catalogue("prod-research", outputs)
    assert "APIs papers have a policy, but the platform runs no policy engine" in str(run.error)
    assert run.resources == []


def test_a_teams_policy_must_stay_in_its_package() -> None:
    message = _catalogue_refusal(
        lambda c: c["catalogue"]["apis"][0]["policy"].update(rules="../rego/apis/platform/assistant.rego")
    )
    assert "must be a .rego file inside the project" in message
    message = _catalogue_refusal(lambda c: c.update(name="billing"))
    assert (
        "API papers: rego/research/papers.rego declares package apis.research.papers; its policy must be package "
        'apis.billing["papers"]' in message
    )


def test_a_team_policy_reaches_the_gateways_opa(
    recordings: dict[str, Recording], catalogues: dict[str, Recording]
) -> None:
    """The team's ConfigMap holds its rules and data under its package, the platform's Kong pods
    mount it, and the team's plugin asks for catalogue research."""
    data = catalogues["prod"].one(CONFIG_MAP, "policies-config-map").inputs["data"]
    assert data["papers.rego"] == (ROOT / "catalogue" / "rego" / "research" / "papers.rego").read_text()
    assert json.loads(data["data.json"]) == {
        "catalogue_data": {"research": {"papers": {"writers": ["research-editors"]}}}
    }
    pod = recordings["prod"].named("kong-deployment").pod_spec
    volume = next(v for v in pod["volumes"] if v["name"] == "opa-apis-research")
    assert volume["configMap"] == {"name": "kong-opa-apis-research", "optional": True}
    plugin = next(p for p in catalogues["prod"].of_type(KONG_PLUGIN) if p.inputs["plugin"] == "opa-authz")
    assert (plugin.inputs["config"]["catalogue"], plugin.inputs["config"]["api"]) == ("research", "papers")


def test_a_platform_without_the_context_output_is_named(recordings: dict[str, Recording]) -> None:
    outputs = {k: v for k, v in recordings["prod"].outputs.items() if k != "catalogueContext"}
    run = run_catalogue("prod-research", outputs)
    assert "has no catalogueContext output (deploy it first" in str(run.error)
    assert run.resources == []


def _catalogue_refusal(change: Any) -> str:
    raw = catalogue_object("prod-research")
    change(raw)
    with pytest.raises(ConfigError) as refused:
        validate(raw, "Pulumi.prod-research.yaml", CATALOGUE)
    return str(refused.value)


def test_a_prod_catalogue_protects_its_keys() -> None:
    message = _catalogue_refusal(lambda c: c.pop("protection"))
    assert "api-catalogue:catalogue: protection.protect must be true in prod" in message


def test_catalogue_stack_keys_are_checked_like_the_platforms() -> None:
    message = _catalogue_refusal(lambda c: c["catalogue"].update(edge={}))
    assert "api-catalogue:catalogue.catalogue.edge: unknown key" in message  # the gateway-wide edge is the platform's
    with pytest.raises(ConfigError) as stray:
        check_keys(["api-catalogue:apis"], "Pulumi.prod-research.yaml", CATALOGUE)
    assert "`pulumi config set --path catalogue.catalogue.apis <value>`" in str(stray.value)


def test_committed_catalogue_stacks_are_valid() -> None:
    for env in ("dev", "prod"):
        config = validate(catalogue_object(f"{env}-research"), f"Pulumi.{env}-research.yaml", CATALOGUE)
        assert isinstance(config, CatalogueStackConfig)
        assert config.owned_namespaces == ["research"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: p["catalogues"].append({"name": "ops", "namespaces": ["ops"]}),
            "catalogues: ops owns namespace ops, which is not one of namespaces.applications",
        ),
        (
            lambda p: p["catalogues"].append({"name": "ops", "namespaces": ["research"]}),
            "catalogues: namespace research is owned by both research and ops",
        ),
        (
            lambda p: p["catalogue"]["apis"][0]["backend"].update(namespace="research"),
            "API chat: namespace research belongs to the catalogue stack research",
        ),
        (
            lambda p: p["catalogues"].append({"name": "research", "namespaces": ["ai-batch"]}),
            "catalogues: names repeat: ['research']",
        ),
    ],
)
def test_bad_catalogue_registrations_are_refused(change: Any, message: str) -> None:
    assert message in refusal(change)
