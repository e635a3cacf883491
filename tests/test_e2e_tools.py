"""The end-to-end helpers' own logic (no cluster needed)."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.assert_stack import differences, provider_computed
from e2e.kube import CrdLoader, Kube, crd_documents, install_crds
from tests.crd_schema import crds_dir
from tests.harness import ROOT, Recording


def test_declared_fields_must_be_stored() -> None:
    declared = {"spec": {"replicas": 3, "template": {"labels": {"a": "b"}}}}
    live = {"spec": {"replicas": 3, "template": {"labels": {"a": "b", "added": "by-server"}}, "extra": 1}}
    assert differences(declared, live) == []


def test_a_pruned_field_is_reported() -> None:
    declared = {"spec": {"plugin": "cors", "config": {"origins": ["*"]}}}
    live = {"spec": {"plugin": "cors"}}
    assert differences(declared, live) == [".spec.config: declared but not stored (pruned?)"]


def test_changed_values_and_list_lengths_are_reported() -> None:
    assert differences({"a": [1, 2]}, {"a": [1]}) == [".a: declared 2 items, stored [1]"]
    assert differences({"a": {"b": "x"}}, {"a": {"b": "y"}}) == [".a.b: declared 'x', stored 'y'"]
    assert differences({"port": 80}, {"port": "80"}) == []  # int-or-string fields come back either way


def test_write_only_string_data_is_not_compared() -> None:
    assert differences({"stringData": {"password": "x"}}, {"data": {"password": "eA=="}}) == []


def test_values_the_providers_compute_need_only_be_present() -> None:
    """The mocks make their own keys; the real engine's differ. Present is enough, absent is not."""
    recording = Recording(computed={"key": {"privateKeyPem": "-----BEGIN EC PRIVATE KEY-----\nmock\n"}})
    computed = provider_computed(recording)
    mock_key = base64.b64encode(b"-----BEGIN EC PRIVATE KEY-----\nmock\n").decode()
    declared = {"data": {"tls.key": mock_key, "other": "eA=="}}
    assert differences(declared, {"data": {"tls.key": "cmVhbA==", "other": "eA=="}}, computed=computed) == []
    assert differences(declared, {"data": {"other": "eA=="}}, computed=computed) == [
        ".data.tls.key: declared but not stored (pruned?)"
    ]
    assert differences(declared, {"data": {"tls.key": "cmVhbA==", "other": "eQ=="}}, computed=computed) == [
        ".data.other: declared 'eA==', stored 'eQ=='"
    ]


def test_crd_loader_reads_every_shared_crd(tmp_path: Path) -> None:
    # PyYAML would read a bare `=` as the YAML 1.1 value tag; the loader keeps it a string.
    (tmp_path / "crd.yaml").write_text(
        "kind: CustomResourceDefinition\nmetadata: {name: x}\nspec:\n  enum:\n  - =\n  - '!='\n"
    )
    [crd] = list(crd_documents([tmp_path]))
    assert crd["spec"]["enum"] == ["=", "!="]
    assert yaml.load("- =\n", Loader=CrdLoader) == ["="]  # noqa: S506 - CrdLoader is a SafeLoader


def test_crd_lock_lists_exactly_the_shared_crd_files() -> None:
    lines = [ln.split("\t") for ln in (ROOT / "e2e" / "crds.lock").read_text().splitlines() if not ln.startswith("#")]
    listed = {local for local, _url, _release in lines}
    assert all(url.startswith("https://") and len(url.split("/")[5]) == 40 for _l, url, _r in lines)
    on_disk = {str(p.relative_to(crds_dir())) for p in crds_dir().rglob("*.yaml")}
    assert listed == on_disk


class _FakeApiServer(Kube):
    """Answers CRD creation, then reports the CRD the way a busy API server does before it settles."""

    def __init__(self, answers: list[tuple[int, Any]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str]] = []

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        self.calls.append((method, path))
        if method == "POST":
            return 201, body
        return self.answers.pop(0)


def test_crd_install_waits_through_null_status_and_transient_errors(tmp_path: Path) -> None:
    (tmp_path / "crd.yaml").write_text("kind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n")
    established = {"status": {"conditions": [{"type": "Established", "status": "True"}]}}
    server = _FakeApiServer(
        [
            (200, {"status": None}),
            (200, {"status": {"conditions": None}}),
            (503, "discovery settling"),
            (200, {"status": {"conditions": [{"type": "Established", "status": "False"}]}}),
            (200, established),
        ]
    )
    assert install_crds(server, [tmp_path], timeout=30) == 1
    assert server.answers == []
    assert server.calls[0] == ("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")


def test_crd_install_gives_up_on_a_real_error(tmp_path: Path) -> None:
    (tmp_path / "crd.yaml").write_text("kind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n")
    server = _FakeApiServer([(403, {"reason": "Forbidden"})])
    with pytest.raises(RuntimeError, match="HTTP 403"):
        install_crds(server, [tmp_path], timeout=30)


def _plugin_warnings(log: Path) -> subprocess.CompletedProcess[str]:
    script = f'source "{ROOT}/e2e/lib.sh"; E2E_PULUMI_LOG="{log}" plugin_warnings'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    "line",
    [
        "warning: using pulumi-resource-kubernetes from $PATH at /usr/local/bin/pulumi-resource-kubernetes",
        "warning: failed to get plugin info for language plugin python: exit status 1",
        "warning: resource plugin random is expected to have version >=4.21.4, but has 0.0.0-dev; the wrong "
        "version may be on your path, or this may be a bug in the plugin",
    ],
)
def test_plugin_warnings_fail_the_run(tmp_path: Path, line: str) -> None:
    log = tmp_path / "pulumi.log"
    log.write_text(f"Previewing update (dev):\n{line}\n    + 84 to create\n")
    run = _plugin_warnings(log)
    assert run.returncode == 1 and line in run.stderr


def test_a_clean_log_passes_and_an_empty_one_does_not(tmp_path: Path) -> None:
    log = tmp_path / "pulumi.log"
    log.write_text("Previewing update (dev):\n    + 84 to create\nResources:\n")
    assert _plugin_warnings(log).returncode == 0
    log.write_text("")
    assert "no Pulumi output was captured" in _plugin_warnings(log).stderr


FAKE_GO = """#!/bin/sh
# Records each call; `go build -o OUT ...` takes a second and writes OUT (or fails when told to).
echo "$*" >> "$GO_CALLS"
if [ "$1" = build ]; then
  while [ "$1" != "-o" ]; do shift; done
  sleep 1
  [ -z "$GO_FAIL" ] || exit 1
  printf 'built by the fake go' > "$2"
fi
"""


def _toolchain(tmp_path: Path, fail: bool = False) -> subprocess.Popen[str]:
    fake = tmp_path / "fakebin" / "go"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(FAKE_GO)
    fake.chmod(0o755)
    env = {
        "PATH": f"{fake.parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "API_PLATFORM_TOOLCHAIN_DIR": str(tmp_path / "cache"),
        "GO_CALLS": str(tmp_path / "go-calls"),
        "GO_FAIL": "1" if fail else "",
    }
    return subprocess.Popen(
        [ROOT / "e2e" / "toolchain.sh", "helm"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_concurrent_toolchain_runs_build_once_and_share_the_result(tmp_path: Path) -> None:
    first, second = _toolchain(tmp_path), _toolchain(tmp_path)
    outputs = [first.communicate(timeout=60), second.communicate(timeout=60)]
    assert (first.returncode, second.returncode) == (0, 0), outputs
    builds = [c for c in (tmp_path / "go-calls").read_text().splitlines() if c.startswith("build")]
    assert len(builds) == 1, builds  # the second run waited for the lock, then found the slot built
    assert any("waiting" in err or "cached" in err for _out, err in outputs)
    cache = tmp_path / "cache"
    assert (cache / "bin" / "helm").read_text() == "built by the fake go"
    assert not list(cache.glob(".building-*"))


def test_an_interrupted_build_leaves_no_slot_and_the_next_run_builds_it(tmp_path: Path) -> None:
    failed = _toolchain(tmp_path, fail=True)
    failed.communicate(timeout=60)
    assert failed.returncode != 0
    assert not list((tmp_path / "cache").glob("helm-*/.done"))
    retried = _toolchain(tmp_path)
    retried.communicate(timeout=60)
    assert retried.returncode == 0
    assert (tmp_path / "cache" / "bin" / "helm").read_text() == "built by the fake go"


def test_a_checkout_with_other_pins_keeps_the_binaries_it_does_not_know(tmp_path: Path) -> None:
    """Two checkouts share the cache (a worktree, an older branch): refreshing bin/ for one must
    not remove a binary the other built, only files no slot holds any more."""
    cache = tmp_path / "cache"
    other = cache / "opa-9.9.9"
    other.mkdir(parents=True)
    (other / "opa").write_text("another checkout's opa")
    (cache / "bin").mkdir()
    os.link(other / "opa", cache / "bin" / "opa")
    (cache / "bin" / "orphan").write_text("its slot is gone")
    run = _toolchain(tmp_path)
    run.communicate(timeout=60)
    assert run.returncode == 0
    assert (cache / "bin" / "opa").read_text() == "another checkout's opa"
    assert not (cache / "bin" / "orphan").exists()
    assert (cache / "bin" / "helm").read_text() == "built by the fake go"
