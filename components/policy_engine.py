"""Open Policy Agent beside every Kong pod: the ConfigMaps it loads and the sidecar that serves them.

OPA answers the opa-authz Kong plugin on 127.0.0.1 only (the Data API is unreachable from the
network); its health and metrics listen on the pod's address for the kubelet and Prometheus. It
loads every policy and data file from ConfigMaps mounted as directories and watches them
(`--watch`): a changed ConfigMap reaches the pod through the kubelet's atomic symlink swap, OPA
reloads, and Kong is never rolled. One ConfigMap holds the platform's policy and data; one per
catalogue (the platform's own and each registered team's, written by the team's stack) holds its
APIs' policies and data, mounted as optional so a catalogue that brings none is no error.
Decisions are logged as JSON on stdout, where the log pipeline takes them to Elasticsearch, with
the request's X-Request-ID in their input; request bodies are masked from the log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.k8s import Resources, app_labels, child, meta, restricted_container_security
from components.models.policy import ApiPolicyConfig, PolicyEngineConfig

DECISION_PATH = "platform/gateway/decision"  # package platform.gateway, rule decision
MOUNT_ROOT = "/policies"
# system.log.mask: what OPA leaves out of the decision log (a body may hold prompts or personal data).
LOG_MASK = """package system.log

mask contains "/input/request/body"
"""


def platform_config_map(gateway: str) -> str:
    return f"{gateway}-opa-platform"


def catalogue_config_map(gateway: str, catalogue: str) -> str:
    """The ConfigMap of a catalogue's API policies, in the gateway's namespace (a team's stack writes it)."""
    return f"{gateway}-opa-apis-{catalogue}"


def data_json(path: list[str], value: Mapping[str, Any]) -> str:
    """A data.json that loads `value` at data.<path>."""
    document: Any = dict(value)
    for key in reversed(path):
        document = {key: document}
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


@dataclass(frozen=True)
class CataloguePolicy:
    """How a catalogue's APIs ask the gateway's OPA, and where their policies go."""

    catalogue: str  # the package segment: apis.<catalogue>.<api>
    namespace: pulumi.Input[str]  # the gateway's, where the catalogue's policy ConfigMap lives
    config_map: str  # catalogue_config_map(gateway, catalogue), as the platform mounts it
    port: int  # OPA's Data API on the gateway pods' loopback
    rules: Mapping[str, str] = field(default_factory=dict)  # API name -> its Rego source

    def plugin_config(self, api: str, policy: ApiPolicyConfig) -> dict[str, Any]:
        """The opa-authz plugin's configuration for an API."""
        return {
            "catalogue": self.catalogue,
            "api": api,
            "decision_path": DECISION_PATH,
            "port": self.port,
            "timeout_ms": policy.timeout_ms,
            "fail_open": policy.fail_open,
            "send_body": policy.send_body,
            "max_body_bytes": policy.max_body_bytes,
            "headers": [h.lower() for h in policy.headers],
            "claims": list(policy.claims),
        }


@dataclass(frozen=True)
class PolicyEngineArgs:
    namespace: str  # the gateway's
    gateway: str  # the KongGateway's name (ConfigMap names derive from it)
    config: PolicyEngineConfig
    rules: Mapping[str, str]  # the platform's policy: ConfigMap key -> Rego source
    catalogues: list[str] = field(default_factory=list)  # every catalogue whose API policies OPA loads


class PolicyEngine(pulumi.ComponentResource):
    """The platform's policy ConfigMap, and the OPA container and volumes the gateway's pods run."""

    def __init__(self, name: str, args: PolicyEngineArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:policy:PolicyEngine", name, None, opts)
        self._args = args
        labels = app_labels(args.gateway, "policy")
        self.config_map = k8s.core.v1.ConfigMap(
            f"{name}-platform",
            metadata=meta(platform_config_map(args.gateway), args.namespace, labels),
            data={
                **args.rules,
                "log_mask.rego": LOG_MASK,
                "data.json": data_json(["platform_data"], args.config.data),
            },
            opts=child(self),
        )
        self.register_outputs({})

    def _directories(self) -> list[tuple[str, str, bool]]:
        """(volume, ConfigMap, optional) of every policy directory OPA loads."""
        gateway = self._args.gateway
        return [
            ("opa-platform", platform_config_map(gateway), False),
            *((f"opa-apis-{c}", catalogue_config_map(gateway, c), True) for c in self._args.catalogues),
        ]

    def volumes(self) -> list[k8s.core.v1.VolumeArgs]:
        return [
            k8s.core.v1.VolumeArgs(
                name=volume, config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config_map, optional=optional)
            )
            for volume, config_map, optional in self._directories()
        ]

    def container(self) -> k8s.core.v1.ContainerArgs:
        cfg = self._args.config
        directories = [f"{MOUNT_ROOT}/{volume}" for volume, _config_map, _optional in self._directories()]
        health = k8s.core.v1.HTTPGetActionArgs(path="/health", port="opa-diagnostic")
        return k8s.core.v1.ContainerArgs(
            name="opa",
            image=cfg.image,
            args=[
                "run",
                "--server",
                f"--addr=127.0.0.1:{cfg.decision_port}",
                f"--diagnostic-addr=0.0.0.0:{cfg.diagnostic_port}",
                "--watch",
                "--ignore=.*",  # the kubelet's ..data and timestamped directories
                "--skip-version-check",
                "--log-format=json",
                "--log-level=info",
                "--log-level-request=error",
                f"--set=decision_logs.console={'true' if cfg.decision_logs else 'false'}",
                *directories,
            ],
            ports=[k8s.core.v1.ContainerPortArgs(name="opa-diagnostic", container_port=cfg.diagnostic_port)],
            resources=Resources.of(cfg.resources).args(),
            security_context=restricted_container_security(),
            liveness_probe=k8s.core.v1.ProbeArgs(http_get=health, period_seconds=10, timeout_seconds=3),
            readiness_probe=k8s.core.v1.ProbeArgs(http_get=health, period_seconds=5, timeout_seconds=3),
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(name=volume, mount_path=f"{MOUNT_ROOT}/{volume}", read_only=True)
                for volume, _config_map, _optional in self._directories()
            ],
        )


class CataloguePolicies(pulumi.ComponentResource):
    """A catalogue's API policies and data, as the ConfigMap the gateway's OPA loads."""

    def __init__(
        self,
        name: str,
        policy: CataloguePolicy,
        data: Mapping[str, Mapping[str, Any]],  # API name -> its data
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("platform:policy:CataloguePolicies", name, None, opts)
        self.config_map = k8s.core.v1.ConfigMap(
            f"{name}-config-map",
            metadata=meta(policy.config_map, policy.namespace, app_labels(policy.catalogue, "policy")),
            data={
                **{f"{api}.rego": source for api, source in sorted(policy.rules.items())},
                "data.json": data_json(["catalogue_data", policy.catalogue], data),
            },
            opts=child(self),
        )
        self.register_outputs({})
