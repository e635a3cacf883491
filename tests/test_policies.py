"""The policy pack: each policy's passing and failing cases, the real stacks, mutated stacks."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from policy import policies
from tests.harness import RecordedResource, Recording
from tests.policy_runner import run_pack, validate_resource

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
OPA_AUTHZ_PLUGIN = "apis-ai-services-opa-authz-"  # the prefix of the prod stack's opa-authz KongPlugins


def good_container(**overrides: Any) -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "ghcr.io/acme/app:1.2.3",
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "env": [{"name": "LOG_LEVEL", "value": "info"}],
    }
    container.update(overrides)
    return container


def deployment(container: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "app"}, "spec": {"template": {"spec": {"containers": [container]}}}}


def kong(env: dict[str, str]) -> dict[str, Any]:
    return deployment(good_container(env=[{"name": k, "value": v} for k, v in env.items()]))


# (policy, resource type, good props, bad props, config, words of the bad case's violation)
CASES: list[tuple[Any, str, dict[str, Any], dict[str, Any], dict[str, Any], str]] = [
    (
        policies.container_resources,
        DEPLOYMENT,
        deployment(good_container()),
        deployment(good_container(resources={"requests": {"cpu": "1"}})),
        {},
        "has no requests for memory",
    ),
    (
        policies.pinned_images,
        DEPLOYMENT,
        deployment(good_container()),
        deployment(good_container(image="ghcr.io/acme/app:latest")),
        {},
        "is not pinned",
    ),
    (
        policies.pinned_images,
        DEPLOYMENT,
        deployment(good_container(image="kong:3.9.1")),
        deployment(good_container(image="evil.example.com/app:1.0")),
        {},
        "not an allowed registry",
    ),
    (
        policies.pod_security,
        DEPLOYMENT,
        deployment(good_container()),
        deployment(good_container(securityContext={"runAsNonRoot": True})),
        {},
        "allows privilege escalation",
    ),
    (
        policies.no_literal_secrets,
        DEPLOYMENT,
        deployment(
            good_container(env=[{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "p"}}}])
        ),
        deployment(good_container(env=[{"name": "DB_PASSWORD", "value": "hunter22"}])),
        {},
        "holds a literal value",
    ),
    (
        policies.no_literal_secrets,
        "kubernetes:core/v1:ConfigMap",
        {"data": {"conf": "log_level = info"}},
        {"metadata": {"name": "c"}, "data": {"conf": "password = hunter22x"}},
        {},
        "looks like a secret",
    ),
    (
        policies.gateway_hpa_range,
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        {"spec": {"scaleTargetRef": {"name": "kong"}, "minReplicas": 3, "maxReplicas": 50}},
        {"spec": {"scaleTargetRef": {"name": "kong"}, "minReplicas": 2, "maxReplicas": 50}},
        {"environment": "prod"},
        "prod requires 3-50",
    ),
    (
        policies.kong_tls13,
        DEPLOYMENT,
        kong({"KONG_DATABASE": "postgres", "KONG_SSL_CIPHER_SUITE": "modern"}),
        kong({"KONG_DATABASE": "postgres", "KONG_SSL_PROTOCOLS": "TLSv1.3"}),
        {},
        "KONG_SSL_CIPHER_SUITE=modern",
    ),
    (
        policies.load_balancers,
        "kubernetes:core/v1:Service",
        {
            "metadata": {"name": "kong-proxy", "labels": {"app.kubernetes.io/component": "gateway"}},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 443, "targetPort": "proxy-tls"}]},
        },
        {"metadata": {"name": "grafana"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
        {},
        "only the gateway proxy may be",
    ),
    (
        policies.load_balancers,
        "kubernetes:core/v1:Service",
        {"metadata": {"name": "kong-admin"}, "spec": {"type": "ClusterIP", "ports": [{"targetPort": "admin-tls"}]}},
        {"metadata": {"name": "kong-admin"}, "spec": {"type": "NodePort", "ports": [{"targetPort": "admin-tls"}]}},
        {},
        "exposes the Kong admin API as NodePort",
    ),
    (
        policies.postgres_ha,
        "kubernetes:postgresql.cnpg.io/v1:Cluster",
        {"spec": {"instances": 3, "plugins": [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": True}]}},
        {"spec": {"instances": 3, "plugins": []}},
        {"environment": "prod"},
        "has no backups",
    ),
    (
        policies.mesh_mtls_strict,
        "kubernetes:kuma.io/v1alpha1:Mesh",
        {"spec": {"mtls": {"enabledBackend": "ca-1", "backends": [{"name": "ca-1", "mode": "STRICT"}]}}},
        {"spec": {"mtls": {"enabledBackend": "ca-1", "backends": [{"name": "ca-1", "mode": "PERMISSIVE"}]}}},
        {"environment": "prod"},
        "STRICT",
    ),
    (
        policies.elasticsearch_nodes,
        "kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch",
        {"spec": {"nodeSets": [{"count": 3}]}},
        {"spec": {"nodeSets": [{"count": 1}, {"count": 1}]}},
        {"environment": "prod"},
        "has 2 node(s)",
    ),
    (
        policies.opa_fail_closed,
        "kubernetes:configuration.konghq.com/v1:KongPlugin",
        {"plugin": "opa-authz", "config": {"api": "chat", "fail_open": False}},
        {"plugin": "opa-authz", "config": {"api": "chat", "fail_open": True}},
        {"environment": "prod"},
        "fail closed",
    ),
    (
        policies.helm_pinned,
        "kubernetes:helm.sh/v3:Release",
        {"chart": "kuma", "version": "2.14.3"},
        {"chart": "kuma", "version": "~2.14"},
        {},
        "not pinned to an exact version",
    ),
]


@pytest.mark.parametrize(
    ("policy", "typ", "good", "bad", "config", "words"), CASES, ids=[f"{c[0].name}-{i}" for i, c in enumerate(CASES)]
)
def test_policy_passes_good_and_fails_bad(
    policy: Any, typ: str, good: dict[str, Any], bad: dict[str, Any], config: dict[str, Any], words: str
) -> None:
    assert validate_resource(policy, typ, good, config) == []
    violations = validate_resource(policy, typ, bad, config)
    assert violations and words in violations[0], violations


@pytest.mark.parametrize(
    "policy",
    [policies.gateway_hpa_range, policies.postgres_ha, policies.mesh_mtls_strict, policies.elasticsearch_nodes],
    ids=lambda p: p.name,
)
def test_environment_aware_policies_let_dev_be_small(policy: Any) -> None:
    bad = next(c for c in CASES if c[0] is policy)
    assert validate_resource(policy, bad[1], bad[3], {"environment": "dev"}) == []


def test_the_committed_stacks_pass_the_whole_pack(recordings: dict[str, Recording]) -> None:
    for stack, run in recordings.items():
        assert run_pack(run.resources, stack) == {}, stack


def _mutated(run: Recording, name: str, change: Callable[[dict[str, Any]], None]) -> list[RecordedResource]:
    resources = copy.deepcopy(run.resources)
    target = next(r for r in resources if r.name == name or (name.endswith("-") and r.name.startswith(name)))
    change(target.inputs)
    return resources


MUTATIONS: list[tuple[str, str, Callable[[dict[str, Any]], None]]] = [
    (
        "container-resources",
        "kong-deployment",
        lambda p: p["spec"]["template"]["spec"]["containers"][0].pop("resources"),
    ),
    (
        "pinned-images",
        "kong-controller-deployment",
        lambda p: p["spec"]["template"]["spec"]["containers"][0].update(image="kong/kubernetes-ingress-controller"),
    ),
    (
        "pod-security",
        "kong-migrations-up",
        lambda p: p["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(
            readOnlyRootFilesystem=False
        ),
    ),
    ("gateway-hpa-range", "kong-hpa", lambda p: p["spec"].update(minReplicas=1)),
    (
        "kong-tls13",
        "kong-deployment",
        lambda p: p["spec"]["template"]["spec"]["containers"][0].update(
            env=[
                e for e in p["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] != "KONG_SSL_CIPHER_SUITE"
            ]
        ),
    ),
    ("load-balancers", "kong-admin", lambda p: p["spec"].update(type="LoadBalancer")),
    ("postgres-ha", "postgres-cluster", lambda p: p["spec"].update(instances=1)),
    ("helm-pinned", "postgres-operator", lambda p: p.update(version="0.x")),
    ("opa-fail-closed", OPA_AUTHZ_PLUGIN, lambda p: p["config"].update(fail_open=True)),
    ("pdb-for-replicated-workloads", "kong-pdb", lambda p: p["spec"]["selector"].update(matchLabels={"x": "y"})),
    (
        "no-literal-secrets",
        "kong-deployment",
        lambda p: p["spec"]["template"]["spec"]["containers"][0]["env"].append(
            {"name": "KONG_PG_PASSWORD", "value": "plaintext"}
        ),
    ),
]


@pytest.mark.parametrize(("policy_name", "resource", "change"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_mutated_prod_stack_fails_the_pack(
    recordings: dict[str, Recording], policy_name: str, resource: str, change: Callable[[dict[str, Any]], None]
) -> None:
    violations = run_pack(_mutated(recordings["prod"], resource, change), "prod")
    assert list(violations) == [policy_name], violations


def test_custom_resources_must_wait_for_their_crd_release(recordings: dict[str, Recording]) -> None:
    resources = copy.deepcopy(recordings["prod"].resources)
    pooler = next(r for r in resources if r.name == "postgres-pooler")
    pooler.dependencies = []
    violations = run_pack(resources, "prod")
    assert list(violations) == ["custom-resources-after-their-crds"]
    assert (
        "Pooler postgres-pooler does not depend on postgres-operator"
        in violations["custom-resources-after-their-crds"][0]
    )


@pytest.mark.parametrize(
    ("resource", "words"),
    [
        ("postgres-cluster", "Cluster postgres-cluster is not protected"),
        ("postgres-object-store", "ObjectStore postgres-object-store is not protected"),
        ("elasticsearch-elasticsearch", "Elasticsearch elasticsearch-elasticsearch is not protected"),
        ("platform-databases", "the namespace platform-databases that holds Cluster postgres-cluster is not protected"),
        ("postgres-operator", "the release postgres-operator that defines the CRD of Cluster postgres-cluster"),
        (
            "pinned-hosts-assistant.api.example.com-assistant-2026b",
            "the private key pinned-hosts-assistant.api.example.com-assistant-2026b (clients pin or hold it)",
        ),
        ("consumers-batch-runner-jwt-key", "the private key consumers-batch-runner-jwt-key"),
    ],
)
def test_prod_stateful_objects_must_be_protected(recordings: dict[str, Recording], resource: str, words: str) -> None:
    resources = copy.deepcopy(recordings["prod"].resources)
    target = next(r for r in resources if r.name == resource)
    assert target.protect, f"{resource} is protected in the committed prod stack"
    target.protect = False
    violations = run_pack(resources, "prod")
    assert list(violations) == ["stateful-protected"]
    assert any(words in message for message in violations["stateful-protected"]), violations


def test_dev_stateful_objects_need_no_protection(recordings: dict[str, Recording]) -> None:
    assert not any(r.protect for r in recordings["dev"].resources)
    assert run_pack(recordings["dev"].resources, "dev") == {}
