"""Validate stack files offline: `python -m stacks.validate Pulumi.dev.yaml [Pulumi.prod.yaml ...]`.

Exit status 0 when every file is valid; otherwise 1, with one readable message per file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stacks.loader import ConfigError, load_stack_file


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(Path().glob("Pulumi.*.yaml"))
    failed = 0
    for path in paths:
        try:
            config = load_stack_file(path)
        except ConfigError as error:
            print(error, file=sys.stderr)
            failed += 1
        else:
            print(f"{path.name}: valid ({config.environment})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
