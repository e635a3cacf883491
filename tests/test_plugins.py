"""The project's own Go: the Pulumi plugins (e2e/plugins) formatted, vetted and their gRPC tests
run, and the collector distribution the trace tests run (e2e/otelcol) formatted and vetted.

The language host and the random and tls providers the real engine runs are ours (the module
proxy does not serve upstream's); `go test` drives each provider through its gRPC interface the
way the engine does, and the host with a real Python virtualenv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import ROOT

PLUGINS = ROOT / "e2e" / "plugins"
GO_MODULES = [PLUGINS, ROOT / "e2e" / "otelcol"]


def _go(*args: str, module: Path = PLUGINS) -> subprocess.CompletedProcess[str]:
    if shutil.which("go") is None:
        pytest.fail("Go is required for the plugins' tests (README: Go 1.25 or newer)")
    return subprocess.run(
        ["go", *args],
        cwd=module,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "GOFLAGS": "-mod=readonly", "CGO_ENABLED": "0"},
    )


@pytest.mark.parametrize("module", GO_MODULES, ids=lambda m: m.name)
def test_our_go_is_gofmt_clean_and_vetted(module: Path) -> None:
    unformatted = subprocess.run(["gofmt", "-l", "."], cwd=module, capture_output=True, text=True, check=True)
    assert unformatted.stdout == "", f"gofmt -w these files: {unformatted.stdout}"
    vet = _go("vet", "./...", module=module)
    assert vet.returncode == 0, vet.stdout + vet.stderr


def test_plugins_pass_their_grpc_tests() -> None:
    run = _go("test", "-count=1", "./...")
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    tested = {line.split()[1] for line in run.stdout.splitlines() if line.startswith("ok ")}
    for package in ("langhost", "provider", "random", "tls"):
        assert f"apiplatform.local/e2e/plugins/internal/{package}" in tested, run.stdout
