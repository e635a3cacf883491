"""Print the resource plan of a stack (the program under the recording mocks) as a tree, or with
`--json` every resource with everything the program registers for it (type, name, parent, inputs,
dependencies, provider, secrets, options) and the stack outputs, canonically: two programs that
plan the same stack print the same JSON (`scripts/plan --json prod > before.json`, change, diff).

    python -m tests.plan [--json] STACK            the platform stack (dev, prod)
    python -m tests.plan [--json] STACK-research   a team catalogue stack on its platform stack
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sys

from components.pins import public_key_pin
from tests.harness import CATALOGUE_DIR, RecordedResource, Recording, run_catalogue, run_program


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


def plan(stack: str) -> Recording:
    """The recording of a platform stack, or of a catalogue stack on the platform stack it names."""
    if (CATALOGUE_DIR / f"Pulumi.{stack}.yaml").exists():
        platform = run_program(stack.split("-", 1)[0])
        return run_catalogue(stack, platform.outputs)
    return run_program(stack)


def _generated(recording: Recording) -> dict[str, str]:
    """The keys the mocks generated for this run, in every form the program passes them on (PEM,
    base64 of the PEM, public-key pin), each with a stable placeholder."""
    placeholders = {}
    for name, computed in recording.computed.items():
        for output, value in computed.items():
            if isinstance(value, str) and "KEY-----" in value:
                placeholders[value] = f"<{name}.{output}>"
                placeholders[base64.b64encode(value.encode()).decode()] = f"<base64 {name}.{output}>"
                if output == "publicKeyPem":
                    placeholders[public_key_pin(value)] = f"<pin {name}>"
    return placeholders


def as_json(recording: Recording) -> str:
    """The canonical document: resources by URN, dependency lists sorted, generated keys replaced."""
    resources = []
    for resource in sorted(recording.resources, key=lambda r: r.urn):
        entry = dataclasses.asdict(resource)
        entry["dependencies"] = sorted(entry["dependencies"])
        resources.append(entry)
    document = {"resources": resources, "outputs": recording.outputs, "secretOutputs": sorted(recording.secret_outputs)}
    text = json.dumps(document, indent=1, sort_keys=True, default=str)
    for value, placeholder in _generated(recording).items():
        text = text.replace(json.dumps(value)[1:-1], placeholder)
    return text


def main(argv: list[str]) -> int:
    as_document = "--json" in argv
    stacks = [a for a in argv if a != "--json"]
    recording = plan(stacks[0] if stacks else "dev")
    if recording.error is not None:
        print(recording.error, file=sys.stderr)
        return 1
    if as_document:
        print(as_json(recording))
        return 0
    print(*render(recording), sep="\n")
    print(f"\n{len(recording.resources)} resources; outputs: {', '.join(sorted(recording.outputs))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
