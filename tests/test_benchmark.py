"""What the benchmarks measure (their timings are reported, never asserted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from benchmarks import policy
from benchmarks.catalogue import measure
from benchmarks.engine import split_catalogues, team_stack_file
from stacks.catalogue_stack import registration_problems
from stacks.config import CatalogueStackConfig
from stacks.loader import CATALOGUE, FULL_KEY, validate, validate_platform
from tests.harness import Recording, platform_object, run_catalogue


def test_objects_grow_linearly_with_a_fixed_cost_per_api_and_consumer() -> None:
    base, small, large = (measure(size, timing=False) for size in (0, 4, 8))
    for m in (small, large):
        assert (m.per_api, m.mesh_per_api, m.per_consumer) == (2, 1, 3)
    per_pair = 2 + 1 + 3
    # The first APIs add the plugins they share by content; more APIs add nothing shared.
    shared = small.objects - base.objects - 4 * per_pair
    assert large.objects - small.objects == 4 * per_pair
    assert 0 < shared <= 3
    # Resources (objects plus generated keys) grow by the same amount for every 4 more pairs.
    assert small.resources - base.resources - shared == large.resources - small.resources


def test_the_engine_benchmark_splits_a_catalogue_into_valid_team_stacks(tmp_path: Path, monkeypatch: Any) -> None:
    """What scripts/bench-engine --layout split:K deploys: the platform registers K teams, each team
    stack holds its share of the APIs in its own namespace, and the platform accepts every one."""
    (tmp_path / "catalogue").mkdir()
    document = {"config": {FULL_KEY: platform_object("prod")}}
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(document))
    monkeypatch.chdir(tmp_path)
    split_catalogues(7, 3)
    split_catalogues(1, 3, offset=7)  # one more API for team-0
    platform = validate_platform(yaml.safe_load(Path("Pulumi.prod.yaml").read_text())["config"][FULL_KEY], "x")
    assert [c.name for c in platform.catalogues] == ["research", "team-0", "team-1", "team-2"]
    context = {"catalogues": {c.name: c.namespaces for c in platform.catalogues}, "environment": "prod"}
    apis = []
    for index in range(3):
        raw = yaml.safe_load(team_stack_file(index).read_text())["config"][CATALOGUE.full_key]
        team = validate(raw, "x", CATALOGUE)
        assert isinstance(team, CatalogueStackConfig)
        assert registration_problems(team, context) == []
        assert team.owned_namespaces == [f"team-{index}"]
        apis += [api.name for api in team.catalogue.apis]
    assert sorted(apis) == sorted(f"api-{i}" for i in range(8))


def test_the_policy_benchmark_decides_the_cases_it_names(tmp_path: Path, recordings: dict[str, Recording]) -> None:
    """benchmarks/policy.py times real decisions: its inputs (from the plugin's own builder) get the
    shipped policies' intended answers, allows and a deny, and the allow-all baseline allows them all."""
    platform = recordings["prod"]
    team = run_catalogue("prod-research", platform.outputs)
    shipped = policy.write_directories(tmp_path / "shipped", policy.rendered_policies(platform, team))
    trivial = policy.write_directories(tmp_path / "trivial", {"opa-platform": {"gateway.rego": policy.TRIVIAL}})
    assert sorted(p.name for p in shipped.iterdir()) == ["opa-apis-platform", "opa-apis-research", "opa-platform"]
    cases = policy.cases(platform, team)
    built = policy.inputs(platform, team)
    assert [c["name"] for c in cases] == [b["name"] for b in built]
    assert {c["allow"] for c in cases} == {True, False}
    for case, document in zip(cases, built, strict=True):
        assert document["input"]["api"]["catalogue"] in ("platform", "research")
        assert policy.decide(shipped, document["input"])["allow"] is case["allow"], case["name"]
        assert policy.decide(trivial, document["input"]) == {"allow": True}
