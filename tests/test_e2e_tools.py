"""The end-to-end helpers' own logic (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

from e2e.assert_stack import differences
from e2e.kube import CrdLoader, crd_documents
from tests.crd_schema import crds_dir
from tests.harness import ROOT


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
