"""Kong's custom resources, whose fields sit at the top level of the object (no `spec`).

pulumi-kubernetes' Python `apiextensions.CustomResource` only sends `apiVersion`, `kind`,
`metadata` and `spec` (pulumi/pulumi-kubernetes#2363), so a KongPlugin's `plugin` and `config`
would be silently dropped. `KongObject` registers the same resource type token that
CustomResource uses (`kubernetes:<apiVersion>:<kind>`), with every field of the object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

KONG_API = "configuration.konghq.com"


class KongObject(pulumi.CustomResource):
    """Any Kong custom resource (KongPlugin, KongClusterPlugin, KongConsumer, ...), fields as given."""

    def __init__(
        self,
        resource_name: str,
        api_version: str,
        kind: str,
        metadata: k8s.meta.v1.ObjectMetaArgs,
        fields: Mapping[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ):
        reserved = {"apiVersion", "kind", "metadata"} & set(fields)
        if reserved:
            raise ValueError(f"{kind} fields may not include {sorted(reserved)}")
        props = {"apiVersion": api_version, "kind": kind, "metadata": metadata, **fields}
        super().__init__(f"kubernetes:{api_version}:{kind}", resource_name, props, opts)


def kong_plugin(
    resource_name: str,
    metadata: k8s.meta.v1.ObjectMetaArgs,
    plugin: str,
    config: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
    cluster_wide: bool = False,
) -> KongObject:
    """A KongPlugin (namespaced, attached by annotation) or KongClusterPlugin (label global: "true")."""
    kind = "KongClusterPlugin" if cluster_wide else "KongPlugin"
    return KongObject(resource_name, f"{KONG_API}/v1", kind, metadata, {"plugin": plugin, "config": dict(config)}, opts)
