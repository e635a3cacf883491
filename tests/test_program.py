"""The whole program per stack: composition, provider, outputs, and refusal of bad config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import yaml

from tests.harness import ROOT, Recording, run_program


def test_one_explicit_kubernetes_provider_used_by_every_object(recording: Recording) -> None:
    providers = recording.of_type("pulumi:providers:kubernetes")
    assert len(providers) == 1
    provider = providers[0]
    assert provider.inputs["enableServerSideApply"] == "true"
    objects = recording.kubernetes_objects()
    assert objects, "the stack registers Kubernetes objects"
    for obj in objects:
        assert obj.provider.startswith(provider.urn + "::"), f"{obj.name} does not use the stack's provider"


def test_provider_targets_the_configured_context(recordings: dict[str, Recording]) -> None:
    assert recordings["dev"].one("pulumi:providers:kubernetes").inputs["context"] == "platform-dev"
    assert recordings["prod"].one("pulumi:providers:kubernetes").inputs["context"] == "platform-prod"


def test_every_child_is_parented_and_named_after_its_component(recording: Recording) -> None:
    components = [r for r in recording.resources if not r.custom]
    assert components
    for component in components:
        for child in recording.children_of(component):
            assert child.name.startswith(f"{component.name}-"), child.name


def test_type_tokens_follow_the_platform_scheme(recording: Recording) -> None:
    # Our components; provider-side components such as yaml/v2:ConfigFile keep their own tokens.
    for component in (r for r in recording.resources if not r.custom and not r.type.startswith("kubernetes:")):
        package, module, name = component.type.split(":")
        assert package == "platform" and module and name[0].isupper(), component.type


def test_stack_labels_reach_every_object(recording: Recording) -> None:
    for obj in recording.kubernetes_objects():
        assert obj.labels.get("team") == "platform", obj.name


def test_no_await_overrides_in_committed_stacks(recording: Recording) -> None:
    for obj in recording.kubernetes_objects():
        assert "pulumi.com/skipAwait" not in obj.annotations
        assert "pulumi.com/deletionPropagationPolicy" not in obj.annotations


def test_e2e_await_settings_annotate_every_object() -> None:
    run = run_program("dev", mutate=lambda p: p["cluster"].update(skipAwait=True, deletionPropagation="background"))
    assert run.error is None
    objects = run.kubernetes_objects()
    assert objects
    for obj in objects:
        assert obj.annotations["pulumi.com/skipAwait"] == "true"
        assert obj.annotations["pulumi.com/deletionPropagationPolicy"] == "background"


def test_outputs(recording: Recording, stack: str) -> None:
    assert recording.outputs["environment"] == stack
    assert "kong" in recording.outputs["namespaces"]


def test_invalid_config_registers_nothing_and_fails_with_one_message() -> None:
    run = run_program("prod", mutate=lambda p: p.update(environment="qa"))
    assert isinstance(run.error, pulumi.RunError)
    assert str(run.error).startswith("Pulumi.prod.yaml: invalid stack configuration (1 problem):")
    assert "api-platform:platform.environment" in str(run.error)
    assert run.resources == []


def test_missing_platform_object_is_refused() -> None:
    run = run_program("dev", extra_config={}, platform=None, mutate=lambda p: p.clear())
    assert isinstance(run.error, pulumi.RunError)
    assert "api-platform:platform.environment: required key is missing" in str(run.error)
    assert run.resources == []


def test_offline_validator_command() -> None:
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "stacks.validate",
            "Pulumi.dev.yaml",
            "Pulumi.prod.yaml",
            "catalogue/Pulumi.prod-research.yaml",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "Pulumi.prod.yaml: valid (prod)" in ok.stdout
    assert "Pulumi.prod-research.yaml: valid (catalogue research on organization/api-platform/prod)" in ok.stdout


def test_a_stray_key_in_the_project_namespace_is_refused_with_the_intended_command() -> None:
    # What `pulumi config set minReplicas 5` writes: the program would otherwise ignore it.
    run = run_program("prod", extra_config={"api-platform:minReplicas": "5"})
    assert isinstance(run.error, pulumi.RunError)
    assert str(run.error) == (
        "Pulumi.prod.yaml: unknown configuration key:\n"
        "  - api-platform:minReplicas: not a setting of this project; settings live in the platform object: "
        "`pulumi config set --path platform.kong.autoscaling.minReplicas <value>`"
    )
    assert run.resources == []


def test_secure_keys_and_other_namespaces_are_not_stray() -> None:
    run = run_program("prod", extra_config={"kubernetes:enableServerSideApply": "true"})
    assert run.error is None, run.error


def validate_edited(stack_file: Path, edit: Any, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`python -m stacks.validate` on a copy of `stack_file` after `edit(config)`."""
    stack = yaml.safe_load(stack_file.read_text())
    edit(stack["config"])
    path = tmp_path / stack_file.name
    path.write_text(yaml.safe_dump(stack))
    return subprocess.run(
        [sys.executable, "-m", "stacks.validate", str(path)], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_the_offline_validator_refuses_stray_keys_too(tmp_path: Path) -> None:
    run = validate_edited(
        ROOT / "Pulumi.dev.yaml", lambda c: c.update({"api-platform:kongImage": "kong:3.9.1"}), tmp_path
    )
    assert run.returncode == 1
    assert "api-platform:kongImage: not a setting of this project" in run.stderr
    assert "`pulumi config set --path platform.kong.image <value>`" in run.stderr


def test_the_offline_validator_reads_a_catalogue_stack_as_one(tmp_path: Path) -> None:
    def saml(config: dict[str, Any]) -> None:
        config["api-catalogue:catalogue"]["catalogue"]["apis"][0]["auth"] = "saml"

    run = validate_edited(ROOT / "catalogue" / "Pulumi.prod-research.yaml", saml, tmp_path)
    assert run.returncode == 1
    assert "api-catalogue:catalogue.catalogue.apis[0].auth (API papers): Input should be" in run.stderr


def test_the_validator_lists_the_pinned_releases() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "stacks.validate", "--releases", "Pulumi.dev.yaml", "Pulumi.prod.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "jaeger 4.11.1 https://jaegertracing.github.io/helm-charts" in lines
    assert "plugin-barman-cloud 0.7.0 https://cloudnative-pg.github.io/charts" in lines  # prod's backups
    assert len(lines) == len(set(lines)) == 8
