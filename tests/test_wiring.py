"""Every in-cluster address the program computes resolves to a Service that will exist.

An address is `<service>.<namespace>.svc[.cluster.local][:port]` anywhere in what the program
declares (object fields, chart values, plugin configs, environment variables) or exports. It must
name a Service that is declared by the program, rendered by one of its releases, or created by an
operator for a custom resource the program declares, and that Service must expose the port. The
addresses an operator writes into the stack file's API catalogue (their own AI services) are theirs
and exempt.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests import charts
from tests.harness import Recording, platform_object, run_program

ADDRESS = re.compile(
    r"(?<![\w.-])([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)\.([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)\.svc(?:\.cluster\.local)?"
    r"(?::(\d+))?(?![\w-])"
)


@dataclass(frozen=True)
class Address:
    service: str
    namespace: str
    port: int | None
    where: str


def strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}[{index}]")


def addresses(run: Recording) -> list[Address]:
    found = []
    sources = [(r.name, r.inputs) for r in run.resources] + [("outputs", run.outputs)]
    for name, value in sources:
        for path, text in strings(value, name):
            for match in ADDRESS.finditer(text):
                port = int(match.group(3)) if match.group(3) else None
                found.append(Address(match.group(1), match.group(2), port, path))
    return found


def operator_addresses(stack: str) -> set[tuple[str, str]]:
    """Services the stack file's catalogue names: the operator's own applications."""
    catalogue = platform_object(stack).get("catalogue", {})
    return {(m.group(1), m.group(2)) for _, text in strings(catalogue, "catalogue") for m in ADDRESS.finditer(text)}


def operator_services(run: Recording) -> Iterator[tuple[str, str, set[int]]]:
    """The Services operators create for the custom resources the program declares.

    CloudNativePG: `<cluster>-rw`, `-ro`, `-r` and one per Pooler, named after it, on 5432.
    ECK: `<elasticsearch>-es-http` on 9200, `<kibana>-kb-http` on 5601.
    """
    for obj in run.kubernetes_objects():
        name, namespace = str(obj.metadata["name"]), str(obj.metadata.get("namespace", ""))
        if obj.kind == "Cluster" and obj.inputs["apiVersion"].startswith("postgresql.cnpg.io/"):
            for suffix in ("rw", "ro", "r"):
                yield f"{name}-{suffix}", namespace, {5432}
        elif obj.kind == "Pooler":
            yield name, namespace, {5432}
        elif obj.kind == "Elasticsearch":
            yield f"{name}-es-http", namespace, {9200}
        elif obj.kind == "Kibana":
            yield f"{name}-kb-http", namespace, {5601}


def services(run: Recording) -> dict[tuple[str, str], set[int]]:
    """(name, namespace) -> ports of every Service that will exist."""
    known: dict[tuple[str, str], set[int]] = {}
    for obj in run.kubernetes_objects():
        if obj.kind == "Service":
            key = (obj.metadata["name"], obj.metadata.get("namespace", "default"))
            known[key] = {int(p["port"]) for p in obj.spec.get("ports", [])}
    for release in charts.releases(run).values():
        for service in charts.objects_of(charts.render(release), "Service"):
            key = (service["metadata"]["name"], service["metadata"].get("namespace", release.namespace))
            known[key] = {int(p["port"]) for p in service["spec"].get("ports", [])}
    for name, namespace, ports in operator_services(run):
        known[(name, namespace)] = ports
    return known


def unresolved(run: Recording, stack: str) -> list[str]:
    known, exempt = services(run), operator_addresses(stack)
    problems = []
    for address in addresses(run):
        key = (address.service, address.namespace)
        if key in exempt:
            continue
        if key not in known:
            problems.append(f"{address.where}: no Service {address.service} in {address.namespace}")
        elif address.port is not None and address.port not in known[key]:
            problems.append(
                f"{address.where}: Service {address.service}.{address.namespace} has no port {address.port}"
            )
    return sorted(set(problems))


def test_the_program_computes_addresses_to_check(recording: Recording) -> None:
    found = {(a.service, a.namespace, a.port) for a in addresses(recording)}
    assert ("otel-collector", "observability", 4318) in found  # Kong's OpenTelemetry plugin
    assert ("jaeger", "observability", 4317) in found  # the collector's exporter
    assert ("kong-pg-pooler-rw", "databases", None) in found  # KONG_PG_HOST


def test_every_address_resolves_to_a_service_that_will_exist(recording: Recording, stack: str) -> None:
    assert unresolved(recording, stack) == []


def test_the_operators_ai_services_are_exempt(recording: Recording, stack: str) -> None:
    assert ("gpt-large", "ai-services") in operator_addresses(stack)
    assert all(a.service != "gpt-large" for a in addresses(recording) if a.where.startswith("outputs"))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda p: p["mesh"].update(tracingEndpoint="otel.observability.svc:4317"),
            "no Service otel in observability",
        ),
        (
            lambda p: p["mesh"].update(tracingEndpoint="otel-collector.observability.svc:55680"),
            "Service otel-collector.observability has no port 55680",
        ),
    ],
    ids=["wrong service name", "wrong port"],
)
def test_a_wrong_address_is_reported(change: Any, problem: str) -> None:
    run = run_program("prod", mutate=change)
    assert run.error is None, run.error
    assert any(problem in line for line in unresolved(run, "prod"))
