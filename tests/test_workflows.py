"""The GitHub workflows: actionlint-clean, and wired as the README says."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.harness import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def test_actionlint_accepts_the_workflows() -> None:
    result = subprocess.run([ROOT / "scripts" / "lint-workflows"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    result = subprocess.run([ROOT / "scripts" / "lint-workflows", broken], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "nope" in result.stdout


def _steps(workflow: str, job: str) -> list[dict[str, object]]:
    document = yaml.safe_load((WORKFLOWS / workflow).read_text())
    return list(document["jobs"][job]["steps"])


def test_pull_requests_run_the_tests_then_preview_each_stack_with_the_policy_pack() -> None:
    document = yaml.safe_load((WORKFLOWS / "pull-request.yml").read_text())
    assert document["permissions"]["pull-requests"] == "write"
    assert any(step.get("run") == "scripts/test" for step in _steps("pull-request.yml", "test"))
    assert document["jobs"]["preview"]["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    action = next(
        s for s in _steps("pull-request.yml", "preview") if str(s.get("uses", "")).startswith("pulumi/actions")
    )
    inputs = action["with"]
    assert isinstance(inputs, dict)
    assert inputs["command"] == "preview" and inputs["comment-on-pr"] is True
    assert inputs["policyPacks"] == "policy"
    assert inputs["policyPackConfigs"] == "policy/config/${{ matrix.stack }}.json"


def test_pull_requests_preview_every_committed_catalogue_stack_on_its_environment() -> None:
    document = yaml.safe_load((WORKFLOWS / "pull-request.yml").read_text())
    job = document["jobs"]["preview-catalogues"]
    stack_files = (ROOT / "catalogue").glob("Pulumi.*.yaml")
    committed = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in stack_files)
    matrix = {entry["stack"]: entry["environment"] for entry in job["strategy"]["matrix"]["include"]}
    assert sorted(matrix) == committed
    assert all(stack.startswith(f"{env}-") for stack, env in matrix.items())
    action = next(
        s
        for s in _steps("pull-request.yml", "preview-catalogues")
        if str(s.get("uses", "")).startswith("pulumi/actions")
    )
    inputs = action["with"]
    assert isinstance(inputs, dict)
    assert inputs["work-dir"] == "catalogue"
    assert inputs["policyPacks"] == "../policy"  # relative to work-dir
    assert inputs["policyPackConfigs"] == "../policy/config/${{ matrix.environment }}.json"


def test_main_deploys_dev_then_prod_behind_an_approval() -> None:
    document = yaml.safe_load((WORKFLOWS / "deploy.yml").read_text())
    deploy = document["jobs"]["deploy"]
    assert deploy["needs"] == "test"
    assert deploy["strategy"]["max-parallel"] == 1
    assert [m["stack"] for m in deploy["strategy"]["matrix"]["include"]] == ["dev", "prod"]
    assert {"stack": "prod", "environment": "production"} in deploy["strategy"]["matrix"]["include"]
    action = next(s for s in _steps("deploy.yml", "deploy") if str(s.get("uses", "")).startswith("pulumi/actions"))
    assert isinstance(action["with"], dict) and action["with"]["command"] == "up"


def test_policy_configs_exist_for_every_stack() -> None:
    for stack_file in ROOT.glob("Pulumi.*.yaml"):
        stack = stack_file.name.split(".")[1]
        assert (ROOT / "policy" / "config" / f"{stack}.json").exists(), stack


def test_drift_is_reported_daily_per_stack_without_changing_anything() -> None:
    document = yaml.safe_load((WORKFLOWS / "drift.yml").read_text())
    assert "schedule" in document[True] and document["permissions"] == {"contents": "read"}
    job = document["jobs"]["drift"]
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    script = next(str(s["run"]) for s in job["steps"] if s.get("id") == "drift")
    assert "pulumi preview" in script and "--refresh --expect-no-changes" in script
    assert "GITHUB_STEP_SUMMARY" in script
    # It reads and never applies: no step runs `pulumi up`, no action is given a command.
    assert not any(re.search(r"^\s*pulumi (up|refresh)\b", str(s.get("run", "")), re.M) for s in job["steps"])
    assert all("command" not in (s.get("with") or {}) for s in job["steps"])


def test_ci_fetches_the_pinned_charts_for_the_chart_tests() -> None:
    for workflow in ("pull-request.yml", "deploy.yml"):
        steps = _steps(workflow, "test")
        assert any("scripts/fetch-charts" in str(s.get("run", "")) for s in steps), workflow
        tests = next(s for s in steps if s.get("run") == "scripts/test")
        assert isinstance(tests["env"], dict) and "API_PLATFORM_CHARTS_DIR" in tests["env"]


def _fake_checkout(tmp_path: Path, failing: str) -> Path:
    """scripts/test in a copy whose tools only log their calls; the call starting with `failing` exits 1."""
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "test").write_text((ROOT / "scripts" / "test").read_text())
    (tmp_path / "scripts" / "setup").write_text("#!/bin/sh\n")
    for tool in ("ruff", "mypy", "python"):
        (bin_dir / tool).write_text(
            f'#!/bin/sh\necho "{tool} $*" >>"$(dirname "$0")/calls"\ncase "{tool} $*" in "{failing}"*) exit 1 ;; esac\n'
        )
    for script in [*(tmp_path / "scripts").iterdir(), *bin_dir.iterdir()]:
        script.chmod(0o755)
    return tmp_path


def test_the_test_command_stops_at_the_first_failing_check(tmp_path: Path) -> None:
    for failing, last in [("ruff check", "ruff check ."), ("ruff format", "ruff format --check ."), ("mypy", "mypy ")]:
        checkout = _fake_checkout(tmp_path / failing.replace(" ", "-"), failing)
        result = subprocess.run([checkout / "scripts" / "test"], capture_output=True, text=True, check=False)
        calls = (checkout / ".venv" / "bin" / "calls").read_text().splitlines()
        assert result.returncode != 0, failing
        assert calls[-1] == last, (failing, calls)
    passing = _fake_checkout(tmp_path / "passing", "nothing")
    assert subprocess.run([passing / "scripts" / "test"], capture_output=True, check=False).returncode == 0
    assert (passing / ".venv" / "bin" / "calls").read_text().splitlines()[-1].startswith("python -m pytest -n 2")
