"""Print the resource plan of a stack (the program under the recording mocks) as a tree."""

from __future__ import annotations

import sys

from tests.harness import RecordedResource, Recording, run_program


def _line(resource: RecordedResource) -> str:
    where = ""
    if resource.kind:
        namespace = resource.metadata.get("namespace")
        where = f"  [{resource.kind} {namespace + '/' if namespace else ''}{resource.metadata.get('name')}]"
    return f"{resource.type}  {resource.name}{where}"


def render(recording: Recording) -> list[str]:
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for resource in recording.resources:
            if resource.parent == parent:
                lines.append("  " * depth + _line(resource))
                walk(resource.urn, depth + 1)

    roots = {r.parent for r in recording.resources} - {r.urn for r in recording.resources}
    for root in sorted(roots):
        walk(root, 0)
    return lines


def main(argv: list[str]) -> int:
    stack = argv[0] if argv else "dev"
    recording = run_program(stack)
    if recording.error is not None:
        print(recording.error, file=sys.stderr)
        return 1
    print(*render(recording), sep="\n")
    print(f"\n{len(recording.resources)} resources; outputs: {', '.join(sorted(recording.outputs))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
