"""checkov on the rendered manifests of both stacks: no finding that checkov-waivers.yaml does not
waive with a reason, and no waiver that nothing needs any more."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import ROOT, Recording
from tests.manifests import render

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


def scan(directory: Path) -> list[dict[str, Any]]:
    if not CHECKOV.exists():
        pytest.fail("checkov is not installed: run scripts/setup")
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}  # no calls home
    result = subprocess.run(
        [
            CHECKOV,
            "-d",
            directory,
            "--framework",
            "kubernetes",
            "--quiet",
            "--compact",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    report = json.loads(result.stdout)
    assert report["summary"]["parsing_errors"] == 0
    return list(report["results"]["failed_checks"])


def waivers() -> list[dict[str, Any]]:
    entries = yaml.safe_load((ROOT / "checkov-waivers.yaml").read_text())["waivers"]
    for entry in entries:
        assert entry.get("reason"), f"waiver {entry['check']} has no reason"
    return list(entries)


def waiver_for(finding: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next(
        (
            w
            for w in entries
            if w["check"] == finding["check_id"]
            and any(fnmatch.fnmatch(finding["resource"], pattern) for pattern in w["resources"])
        ),
        None,
    )


def test_every_finding_is_waived_with_a_reason_and_no_waiver_is_stale(
    recordings: dict[str, Recording], tmp_path: Path
) -> None:
    entries = waivers()
    used: set[int] = set()
    unwaived = []
    for stack, run in recordings.items():
        render(run, tmp_path / stack)
        for finding in scan(tmp_path / stack):
            waiver = waiver_for(finding, entries)
            if waiver is None:
                unwaived.append(f"{stack}: {finding['check_id']} {finding['check_name']} on {finding['resource']}")
            else:
                used.add(id(waiver))
    assert unwaived == []
    assert [w["check"] for w in entries if id(w) not in used] == [], "stale waivers"


def test_the_scan_finds_real_problems(recordings: dict[str, Recording], tmp_path: Path) -> None:
    render(recordings["prod"], tmp_path)
    manifest = tmp_path / "deployment-kong-kong.yaml"
    deployment = yaml.safe_load(manifest.read_text())
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    manifest.write_text(yaml.safe_dump(deployment))
    findings = scan(tmp_path)
    unwaived = [f["check_id"] for f in findings if waiver_for(f, waivers()) is None]
    assert "CKV_K8S_16" in unwaived  # "Container should not be privileged"
