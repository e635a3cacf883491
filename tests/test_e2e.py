"""The real engine: both stacks through preview, up, no-change preview, read-back and destroy.

Runs `e2e/run.sh` when the binaries built from upstream modules are cached (`e2e/toolchain.sh`,
about 20 minutes cold on 2 cores), which keeps the default test run short; the project's own
plugins (e2e/plugins) build in the run itself when their source changed (under a minute).
API_PLATFORM_E2E=always builds the toolchain first if needed; API_PLATFORM_E2E=never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.harness import ROOT

MODE = os.environ.get("API_PLATFORM_E2E", "auto")


# The slots built from upstream modules; the project's own plugins are quick to build.
UPSTREAM_BUILT = ("pulumi", "kubernetes", "etcd", "control-plane", "helm")


def _toolchain_ready() -> bool:
    check = [str(ROOT / "e2e" / "toolchain.sh"), "--check", *UPSTREAM_BUILT]
    return subprocess.run(check, check=False).returncode == 0


@pytest.mark.e2e
def test_dev_and_prod_deploy_and_destroy_on_a_local_api_server() -> None:
    if MODE == "never":
        pytest.skip("API_PLATFORM_E2E=never")
    if MODE != "always" and not _toolchain_ready():
        pytest.skip("toolchain not built: run e2e/toolchain.sh once (or set API_PLATFORM_E2E=always)")
    if shutil.which("go") is None and not _toolchain_ready():
        pytest.fail("the e2e toolchain needs Go to build")
    run = subprocess.run([ROOT / "e2e" / "run.sh"], capture_output=True, text=True, timeout=3600, check=False)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-6000:]
    assert "passed: dev prod" in log
    assert "step plugins-from-the-plugin-cache: ok" in log  # our plugins installed, none from PATH
    for stack in ("dev", "prod"):
        assert f"{stack}: all " in log and "stored as declared" in log
        assert f"step {stack}:preview-no-changes: ok" in log
        assert f"step {stack}:nothing-left: ok" in log
