"""The house plan: components/ (with their models) is the ground floor and never imports stacks/;
no Python module grows past about 500 lines."""

from __future__ import annotations

import ast
import subprocess

from tests.harness import ROOT

MAX_LINES = 500


def _imported_modules(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def _python_files(*paths: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", *paths], cwd=ROOT, capture_output=True, text=True, check=True)
    return [f for f in listed.stdout.split() if f.endswith(".py")]


def test_components_never_import_stacks() -> None:
    upward = {
        path: sorted(m for m in _imported_modules(path) if m == "stacks" or m.startswith("stacks."))
        for path in _python_files("components")
    }
    assert len(upward) > 15
    assert {path: modules for path, modules in upward.items() if modules} == {}


def test_no_python_module_is_over_about_500_lines() -> None:
    sizes = {path: len((ROOT / path).read_text().splitlines()) for path in _python_files()}
    assert {path: lines for path, lines in sizes.items() if lines > MAX_LINES} == {}
