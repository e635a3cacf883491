"""The trace pipeline as the stacks render it, run as processes on loopback.

The collector's and Jaeger's configurations are taken from the rendered releases (the chart's
ConfigMaps, by `helm template` of the pinned charts with the program's values), never retyped.
To run them here only their addresses move: every address a process listens on becomes a free
port on 127.0.0.1, and every address it sends to (`<service>.<namespace>.svc:<port>`) must be a
Service one of the rendered releases creates, and becomes the loopback port of the process behind
that Service's target port. An address that names no rendered Service, or a port its process does
not listen on, is an error: that is where a span would have been lost in the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from tests.charts import Release, objects_of, one, pod_template, render
from tests.processes import free_port, toolchain_binary

LISTEN = re.compile(r"^(0\.0\.0\.0|\$\{env:MY_POD_IP\}|127\.0\.0\.1|localhost)?:(\d+)$")
SERVICE = re.compile(r"^(?:(https?)://)?([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?:(\d+)(/.*)?$")
POD_IP_ENV = {"MY_POD_IP": "127.0.0.1"}  # what the collector chart sets from the pod's status


def binary(name: str) -> str:
    """otelcol or jaeger (toolchain slots of the same names)."""
    return toolchain_binary(name)


@dataclass
class Process:
    """One release's process: its rendered configuration and container, and its loopback ports."""

    release: Release
    config: dict[str, Any]
    container: dict[str, Any]
    services: list[dict[str, Any]]
    ports: dict[int, int] = field(default_factory=dict)  # container port -> loopback port

    def port(self, container_port: int) -> int:
        if container_port not in self.ports:
            self.ports[container_port] = free_port()
        return self.ports[container_port]

    def service_port(self, name: str, namespace: str, port: int) -> int | None:
        """The container port behind `<name>.<namespace>.svc:<port>`, if this release's Service."""
        for service in self.services:
            metadata = service["metadata"]
            if (metadata["name"], metadata.get("namespace") or self.release.namespace) != (name, namespace):
                continue
            for p in service["spec"]["ports"]:
                if p["port"] == port and p.get("protocol", "TCP") == "TCP":
                    target = p.get("targetPort", port)
                    if isinstance(target, str):
                        target = next(c["containerPort"] for c in self.container["ports"] if c.get("name") == target)
                    return int(target)
        return None


def rendered_process(release: Release, config_map_key: str) -> Process:
    """The release's workload, the configuration its ConfigMap holds under `config_map_key`, and its Services."""
    objects = render(release)
    config_map = next(c for c in objects_of(objects, "ConfigMap") if config_map_key in c.get("data", {}))
    deployment = one(objects, "Deployment")
    container = pod_template(deployment)["spec"]["containers"][0]
    config = yaml.safe_load(config_map["data"][config_map_key])
    return Process(release, config, container, objects_of(objects, "Service"))


class AddressError(AssertionError):
    pass


def on_loopback(process: Process, peers: list[Process]) -> dict[str, Any]:
    """The process's configuration with its addresses moved to loopback (see the module's doc)."""

    def target(service: str, namespace: str, port: int, original: str) -> int:
        for peer in peers:
            container_port = peer.service_port(service, namespace, port)
            if container_port is not None:
                if container_port not in listened(peer.config):
                    raise AddressError(f"{original}: {peer.release.name} does not listen on {container_port}")
                return peer.port(container_port)
        raise AddressError(f"{original}: no Service {service}.{namespace} in the rendered releases")

    def move(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) >= {"host", "port"} and isinstance(value["port"], int):  # a prometheus reader
                return {**value, "host": "127.0.0.1", "port": process.port(value["port"])}
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        if isinstance(value, str):
            if m := LISTEN.match(value):
                return f"127.0.0.1:{process.port(int(m.group(2)))}"
            if m := SERVICE.match(value):
                scheme, service, namespace, port, path = m.groups()
                address = f"127.0.0.1:{target(service, namespace, int(port), value)}"
                return f"{scheme}://{address}{path or ''}" if scheme else address
        return value

    return dict(move(process.config))


def listened(config: Mapping[str, Any]) -> set[int]:
    """The ports a configuration listens on (every `host:port` it binds, and prometheus readers)."""
    ports: set[int] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if set(value) >= {"host", "port"} and isinstance(value["port"], int):
                ports.add(value["port"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and (m := LISTEN.match(value)):
            ports.add(int(m.group(2)))

    walk(config)
    return ports
