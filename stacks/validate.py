"""Validate stack files offline: `python -m stacks.validate Pulumi.dev.yaml [catalogue/Pulumi.x.yaml ...]`.

A file of a team's catalogue stack (in `catalogue/`, project api-catalogue) is validated as one.
Exit status 0 when every file is valid; otherwise 1, with one readable message per file.
`--releases` prints instead the pinned Helm releases the files install, one `chart version
repository` line each (what scripts/fetch-charts downloads and the e2e expects rendered).
"""

from __future__ import annotations

import sys
from pathlib import Path

from stacks.config import CatalogueStackConfig
from stacks.loader import CATALOGUE, ConfigError, load_project_stack_file, load_stack_file, read_stack_file


def main(argv: list[str]) -> int:
    releases = "--releases" in argv
    paths = [Path(a) for a in argv if a != "--releases"] or sorted(Path().glob("Pulumi.*.yaml"))
    failed = 0
    printed: set[tuple[str, str]] = set()
    for path in paths:
        try:
            if CATALOGUE.full_key in read_stack_file(path):
                catalogue = load_project_stack_file(path, CATALOGUE)
                assert isinstance(catalogue, CatalogueStackConfig)
                if not releases:
                    print(f"{path.name}: valid (catalogue {catalogue.name} on {catalogue.platform_stack})")
                continue
            config = load_stack_file(path)
        except ConfigError as error:
            print(error, file=sys.stderr)
            failed += 1
            continue
        if not releases:
            print(f"{path.name}: valid ({config.environment})")
            continue
        for release in config.helm_releases().values():
            if (release.chart, release.version) not in printed:
                printed.add((release.chart, release.version))
                print(release.chart, release.version, release.repository)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
