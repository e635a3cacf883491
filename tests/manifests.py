"""Render a stack's recorded Kubernetes objects to YAML files, for scanners such as checkov."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from tests.harness import Recording, run_program


def render(recording: Recording, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for obj in recording.kubernetes_objects():
        meta = obj.metadata
        name = f"{obj.kind}-{meta.get('namespace') or 'cluster'}-{meta['name']}.yaml".lower()
        path = directory / name
        path.write_text(yaml.safe_dump(obj.inputs, sort_keys=False))
        paths.append(path)
    return paths


if __name__ == "__main__":
    stack, out = sys.argv[1], Path(sys.argv[2])
    print(f"{len(render(run_program(stack), out))} manifests written to {out}")
