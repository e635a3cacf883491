"""PlatformNamespaces: one Namespace per configured role, Pod Security and mesh labels."""

from __future__ import annotations

from tests.harness import RecordedResource, Recording

NAMESPACE = "kubernetes:core/v1:Namespace"


def platform_namespaces(run: Recording) -> list[RecordedResource]:
    component = run.one("platform:namespaces:PlatformNamespaces")
    return [r for r in run.children_of(component) if r.type == NAMESPACE]


def test_each_configured_namespace_exists_once(recordings: dict[str, Recording]) -> None:
    common = ["ai-services", "databases", "kong", "logging", "observability", "research"]
    assert sorted(r.metadata["name"] for r in platform_namespaces(recordings["dev"])) == common
    assert sorted(r.metadata["name"] for r in platform_namespaces(recordings["prod"])) == sorted([*common, "ai-batch"])


def test_pod_security_is_enforced_warned_and_audited(recording: Recording) -> None:
    expected = {"logging": "privileged", "observability": "baseline"}
    for ns in platform_namespaces(recording):
        for mode in ("enforce", "warn", "audit"):
            assert ns.labels[f"pod-security.kubernetes.io/{mode}"] == expected.get(ns.metadata["name"], "restricted")


def test_mesh_injection_follows_config(recording: Recording) -> None:
    injection = {ns.metadata["name"]: ns.labels["kuma.io/sidecar-injection"] for ns in platform_namespaces(recording)}
    assert injection["kong"] == "enabled"
    assert injection["ai-services"] == "enabled"
    assert injection["databases"] == "disabled"


def test_operator_namespaces_carry_the_same_pod_security_labels(recording: Recording) -> None:
    levels = {"cert-manager": "restricted", "kuma-system": "baseline"}
    namespaces = {n.metadata["name"]: n.labels for n in recording.of_type(NAMESPACE)}
    for name, level in levels.items():
        for mode in ("enforce", "warn", "audit"):
            assert namespaces[name][f"pod-security.kubernetes.io/{mode}"] == level, (name, mode)
        assert namespaces[name]["kuma.io/sidecar-injection"] == "disabled"
