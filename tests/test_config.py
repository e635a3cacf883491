"""Config models and the loader: defaults, every validation rule, and the bad-input messages."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from stacks.config import PlatformConfig
from stacks.loader import ConfigError, load_stack_file, validate_platform
from tests.harness import ROOT, platform_object

MINIMAL: dict[str, Any] = {"environment": "dev"}


def test_minimal_config_gets_the_documented_defaults() -> None:
    cfg = validate_platform(MINIMAL, "Pulumi.dev.yaml")
    assert cfg.environment == "dev" and not cfg.is_prod
    assert cfg.cluster.context is None and cfg.cluster.skip_await is False
    assert cfg.cluster.deletion_propagation is None
    assert cfg.labels == {}
    assert [ns.name for ns in cfg.namespaces.all()] == ["kong", "databases", "observability", "logging", "ai-services"]
    assert cfg.namespaces.gateway.mesh_injection and not cfg.namespaces.database.mesh_injection
    levels = {ns.name: ns.pod_security for ns in cfg.namespaces.all()}
    # The log shipper reads node files (hostPath); the observability charts run at baseline.
    assert levels == {
        "kong": "restricted",
        "databases": "restricted",
        "observability": "baseline",
        "logging": "privileged",
        "ai-services": "restricted",
    }


def test_models_are_immutable() -> None:
    cfg = validate_platform(MINIMAL, "Pulumi.dev.yaml")
    with pytest.raises(ValidationError):
        cfg.environment = "prod"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_committed_stack_files_are_valid(stack: str) -> None:
    cfg = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    assert cfg.environment == stack


def _error(raw: object, source: str = "Pulumi.prod.yaml") -> str:
    with pytest.raises(ConfigError) as caught:
        validate_platform(raw, source)
    return str(caught.value)


def _with(path: str, value: Any) -> dict[str, Any]:
    """The committed prod object with `value` set at a dotted path (list indexes as numbers)."""
    raw = platform_object("prod")
    *parents, last = path.split(".")
    node: Any = raw
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return raw


# (description, raw object, key path the message must name, words the message must contain)
BAD_INPUTS: list[tuple[str, Any, str, str]] = [
    (
        "unknown top-level key",
        _with("gatway", {}),
        "api-platform:platform.gatway",
        "unknown key (allowed: catalogue, catalogues, certManager, chartsDirectory, cluster",
    ),
    ("unknown nested key", _with("cluster.contxt", "x"), "api-platform:platform.cluster.contxt", "unknown key"),
    ("wrong type", _with("cluster.skipAwait", "sometimes"), "api-platform:platform.cluster.skipAwait", "boolean"),
    ("bad enum", _with("environment", "staging"), "api-platform:platform.environment", "'dev' or 'prod'"),
    ("missing required", {"cluster": {}}, "api-platform:platform.environment", "required key is missing"),
    (
        "bad namespace name",
        _with("namespaces.gateway.name", "Kong_GW"),
        "api-platform:platform.namespaces.gateway.name",
        "not a valid Kubernetes name",
    ),
    (
        "bad name in a list",
        _with("namespaces.applications.0", {"name": "-x"}),
        "api-platform:platform.namespaces.applications[0].name",
        "not a valid Kubernetes name",
    ),
    (
        "duplicate namespaces",
        _with("namespaces.database", {"name": "kong"}),
        "api-platform:platform.namespaces",
        "namespace names must be unique, repeated: kong",
    ),
    (
        "bad label key",
        _with("labels", {"bad key": "x"}),
        "api-platform:platform.labels",
        "not a valid Kubernetes label",
    ),
    ("bad label value", _with("labels", {"team": "a b"}), "api-platform:platform.labels", "label value 'a b'"),
    (
        "bad pod security level",
        _with("namespaces.database.podSecurity", "strict"),
        "api-platform:platform.namespaces.database.podSecurity",
        "'privileged', 'baseline' or 'restricted'",
    ),
    (
        "bad deletion propagation",
        _with("cluster.deletionPropagation", "now"),
        "api-platform:platform.cluster.deletionPropagation",
        "'foreground', 'background' or 'orphan'",
    ),
]


BAD_INPUTS += [
    (
        "hpa min above max",
        _with("kong.autoscaling", {"minReplicas": 10, "maxReplicas": 5}),
        "api-platform:platform.kong.autoscaling",
        "minReplicas (10) is above maxReplicas (5)",
    ),
    (
        "hpa above 50",
        _with("kong.autoscaling", {"maxReplicas": 60}),
        "api-platform:platform.kong.autoscaling.maxReplicas",
        "less than or equal to 50",
    ),
    (
        "limits below requests",
        _with("kong.resources", {"requests": {"cpu": "2", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "4Gi"}}),
        "api-platform:platform.kong.resources",
        "limits.cpu (1) is below requests.cpu (2)",
    ),
    (
        "bad quantity",
        _with("postgres.storageSize", "lots"),
        "api-platform:platform.postgres.storageSize",
        "is not a Kubernetes quantity",
    ),
    ("latest image", _with("kong.image", "kong:latest"), "api-platform:platform.kong.image", "pinned tag or digest"),
    ("untagged image", _with("kong.image", "kong"), "api-platform:platform.kong.image", "pinned tag or digest"),
    (
        "chart version range",
        _with(
            "postgres.operator",
            {"chart": "cloudnative-pg", "version": "^0.29", "repository": "https://x", "namespace": "cnpg-system"},
        ),
        "api-platform:platform.postgres.operator.version",
        "not an exact chart version",
    ),
    (
        "sync replicas without standbys",
        _with("postgres.instances", 1),
        "api-platform:platform.postgres",
        "synchronousReplicas (1) needs at least 2 instances",
    ),
    (
        "backup without destination",
        _with("postgres.backup.destinationPath", "bucket-without-scheme"),
        "api-platform:platform.postgres.backup",
        "destinationPath must be s3://<bucket>",
    ),
    (
        "five-field cron",
        _with("postgres.backup.schedule", "0 2 * * *"),
        "api-platform:platform.postgres.backup",
        "must have six fields",
    ),
    (
        "prod without backups",
        _with("postgres.backup", {"enabled": False}),
        "api-platform:platform",
        "postgres.backup.enabled must be true in prod",
    ),
    (
        "prod with a small gateway",
        _with("kong.autoscaling.minReplicas", 2),
        "api-platform:platform",
        "kong.autoscaling.minReplicas must be at least 3 in prod (got 2)",
    ),
    (
        "prod with a single database instance",
        _with("postgres", {**platform_object("prod")["postgres"], "instances": 2, "synchronousReplicas": 1}),
        "api-platform:platform",
        "postgres.instances must be at least 3 in prod (got 2)",
    ),
]

# The connection budget: what 50 gateway pods could open must fit the pooler and PostgreSQL.
BUDGET_CASES: list[tuple[str, Any, str | None]] = [
    (
        "pooler client connections",
        _with("kong.pgPoolSize", 40),  # 50 x 2 x 40 = 4000 > 3 x 1000
        "kong.autoscaling.maxReplicas (50) x kong.nginxWorkerProcesses (2) x kong.pgPoolSize (40) = 4000 client "
        "connections exceed what the pooler accepts: postgres.pooler.instances (3) x maxClientConn (1000) = 3000",
    ),
    (
        "pooler server connections",
        _with("postgres.pooler.defaultPoolSize", 200),  # 3 x 200 = 600 > 500 - 20
        "postgres.pooler.instances (3) x defaultPoolSize (200) = 600 server connections exceed "
        "postgres.maxConnections - reservedConnections = 480",
    ),
    (
        "no pooler",
        _with("postgres.pooler.enabled", False),  # 50 x 2 x 4 = 400 is fine; lower max_connections
        None,
    ),
    (
        "read-only replicas",
        _with("kong.pgRoPoolSize", 10),  # 50 x 2 x 10 = 1000 > 480
        "1000 read-only connections could all land on one replica",
    ),
]


@pytest.mark.parametrize(("case", "raw", "words"), BUDGET_CASES, ids=[c[0] for c in BUDGET_CASES])
def test_connection_budget_guard(case: str, raw: Any, words: str | None) -> None:
    if words is None:
        validate_platform(raw, "Pulumi.prod.yaml")  # within budget: accepted
        raw["postgres"]["maxConnections"] = 300
        words = "= 400 connections exceed postgres.maxConnections - reservedConnections = 280 (enable postgres.pooler"
    message = _error(raw)
    assert "api-platform:platform: connection budget: " in message, message
    assert words in message, message


@pytest.mark.parametrize(("case", "raw", "path", "words"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_names_file_key_and_problem(case: str, raw: Any, path: str, words: str) -> None:
    message = _error(raw)
    assert message.startswith("Pulumi.prod.yaml: invalid stack configuration"), message
    line = next((ln for ln in message.splitlines() if ln.startswith(f"  - {path}:")), None)
    assert line is not None, f"{case}: no line for {path} in:\n{message}"
    assert words in line, f"{case}: {words!r} not in {line!r}"
    assert "Traceback" not in message


def test_every_problem_is_reported_at_once() -> None:
    raw = _with("environment", "qa")
    raw["cluster"]["skipAwait"] = "often"
    message = _error(raw)
    assert "(2 problems)" in message
    assert "platform.environment" in message and "platform.cluster.skipAwait" in message


@pytest.mark.parametrize(
    ("raw", "words"),
    [(None, "required key api-platform:platform is missing"), ([1, 2], "must be an object, got list")],
)
def test_missing_or_non_object_platform_key(raw: object, words: str) -> None:
    assert words in _error(raw)


def test_stack_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "Pulumi.qa.yaml"
    bad.write_text("config:\n  api-platform:platform:\n    environment: dev\n    extra: 1\n")
    with pytest.raises(ConfigError, match=r"^Pulumi.qa.yaml: .*\n  - api-platform:platform.extra: unknown key"):
        load_stack_file(bad)
    (tmp_path / "Pulumi.broken.yaml").write_text("config: [\n")
    with pytest.raises(ConfigError, match=r"^Pulumi\.broken\.yaml: not valid YAML"):
        load_stack_file(tmp_path / "Pulumi.broken.yaml")
    with pytest.raises(ConfigError, match="stack file not found"):
        load_stack_file(tmp_path / "Pulumi.none.yaml")


def test_validation_does_not_mutate_the_input() -> None:
    raw = platform_object("prod")
    before = copy.deepcopy(raw)
    PlatformConfig.model_validate(raw)
    assert raw == before
