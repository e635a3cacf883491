"""A stack's Rego policies, checked before anything is registered: every file exists, compiles with
the real Open Policy Agent the gateway runs (`opa check --strict`), and an API's policy declares the
package the API owns, `apis.<catalogue>["<api>"]` (a team's stack can bring no other package).

OPA is found as `$API_PLATFORM_OPA`, else `opa` on PATH, else in the toolchain cache
(`e2e/toolchain.sh opa` builds it from the served Go module, at the version of the image).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from components.models.catalogue import CatalogueConfig
from components.models.policy import OPA_IMAGE

ROOT = Path(__file__).resolve().parent.parent
OPA_VERSION = OPA_IMAGE.rsplit(":", 1)[1].split("-", 1)[0]


class PolicyError(Exception):
    """A policy that cannot be deployed (the loader prefixes the stack file)."""


@dataclass(frozen=True)
class RegoFile:
    owner: str  # what it belongs to, for messages: "API chat", "policy.rules[0]"
    path: str  # as the stack file names it, relative to the project
    source: str
    package: tuple[str, ...] | None = None  # the package it must declare, if any


def read_rego(project_dir: Path, owner: str, path: str, package: tuple[str, ...] | None = None) -> RegoFile:
    file = project_dir / path
    if not file.is_file():
        raise PolicyError(f"{owner}: policy file {path} does not exist (in {project_dir})")
    return RegoFile(owner, path, file.read_text(), package)


def api_rego(catalogue: CatalogueConfig, catalogue_name: str, project_dir: Path) -> list[RegoFile]:
    """The catalogue's API policies, each bound to the package apis.<catalogue>.<api>."""
    return [
        read_rego(project_dir, f"API {api.name}", api.policy.rules, ("apis", catalogue_name, api.name))
        for api in catalogue.policed
        if api.policy and api.policy.rules
    ]


def platform_rego(rules: Sequence[str], project_dir: Path = ROOT) -> list[RegoFile]:
    return [read_rego(project_dir, f"policy.rules[{i}]", path) for i, path in enumerate(rules)]


def opa_binary() -> str:
    cache = Path(os.environ.get("API_PLATFORM_TOOLCHAIN_DIR", Path.home() / ".cache/api-platform/toolchain"))
    for candidate in (os.environ.get("API_PLATFORM_OPA"), shutil.which("opa"), cache / "bin" / "opa"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise PolicyError(
        f"the policies are compiled with Open Policy Agent {OPA_VERSION} before anything is registered, and no "
        "opa was found: run e2e/toolchain.sh opa (or put opa on PATH, or set API_PLATFORM_OPA)"
    )


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False)


@functools.cache
def _opa_version(opa: str) -> None:
    version = _run(opa, "version").stdout
    if f"Version: {OPA_VERSION}\n" not in version:
        found = version.split("\n", 1)[0] or "no version"
        raise PolicyError(f"{opa} is not Open Policy Agent {OPA_VERSION}, the version the gateway runs ({found})")


class _CompileError(Exception):
    def __init__(self, errors: list[tuple[int | None, object, str]]):
        super().__init__(errors)
        self.errors = errors  # (index of the source, row, message with other sources as "#<index>")


def _opa_files(opa: str, sources: tuple[str, ...], *command: str) -> subprocess.CompletedProcess[str]:
    """Run `opa <command> <files>` on the sources written to numbered files; errors name sources by index."""
    with tempfile.TemporaryDirectory() as tmp:
        files = [Path(tmp, f"{index}.rego") for index in range(len(sources))]
        for file, source in zip(files, sources, strict=True):
            file.write_text(source)
        result = _run(opa, *command, *map(str, files))
        if result.returncode != 0:
            text = result.stdout or result.stderr
            errors = json.loads(text).get("errors") if text.lstrip().startswith("{") else None
            raise _CompileError(
                [
                    (
                        int(Path(e["location"]["file"]).stem) if e.get("location") else None,
                        e.get("location", {}).get("row", "?"),
                        re.sub(re.escape(tmp) + r"/(\d+)\.rego", r"#\1", e["message"]),
                    )
                    for e in errors or [{"message": text.strip()}]
                ]
            )
        return result


@functools.cache
def _packages(opa: str, sources: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Each source's package path (each parsed on its own)."""
    packages = []
    for index, source in enumerate(sources):
        try:
            parsed = _opa_files(opa, (source,), "parse", "--format", "json")
        except _CompileError as error:
            raise _CompileError([(index, row, message) for _i, row, message in error.errors]) from None
        path = json.loads(parsed.stdout)["package"]["path"]
        packages.append(tuple(str(term["value"]) for term in path[1:]))
    return tuple(packages)


@functools.cache
def _compile(opa: str, sources: tuple[str, ...]) -> None:
    """`opa check --strict` of the sources together."""
    _opa_files(opa, sources, "check", "--strict", "--format", "json")


def check_rego(files: Sequence[RegoFile]) -> None:
    """An API policy must declare its API's package; then the files must compile together. Either
    failure is a PolicyError naming the owner and the file."""
    if not files:
        return
    opa = opa_binary()
    _opa_version(opa)
    sources = tuple(f.source for f in files)

    def named(message: str) -> str:
        return re.sub(r"#(\d+)", lambda m: files[int(m.group(1))].path, message)

    try:
        packages = _packages(opa, sources)
        for file, package in zip(files, packages, strict=True):
            if file.package is not None and package != file.package:
                catalogue, api = file.package[1], file.package[2]
                raise PolicyError(
                    f"{file.owner}: {file.path} declares package {'.'.join(package)}; its policy must be package "
                    f'apis.{catalogue}["{api}"] (catalogue {catalogue} owns the packages under apis.{catalogue})'
                )
        _compile(opa, sources)
    except _CompileError as compiled:
        raise PolicyError(
            "policy does not compile: "
            + "; ".join(
                f"{files[index].owner}: {files[index].path}:{row}: {named(message)}"
                if index is not None
                else named(message)
                for index, row, message in compiled.errors
            )
        ) from None
