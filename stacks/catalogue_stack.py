"""A team's catalogue stack (project api-catalogue, `catalogue/`): its APIs, pinned hosts, consumers
and their mesh permissions, deployed on the platform stack it names.

The platform stack exports `catalogueContext` (what a catalogue needs from it: the ingress class,
the certificate issuer, the mesh, the sources every backend allows, and which namespaces each
registered catalogue owns). This stack reads it through a StackReference, as plain values, before
it registers anything else; then the platform must consent: the catalogue is registered under its
name, every namespace it would write to is one the platform gave it, and the environments match.
A refusal stops the program with one message, before any object is registered.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime.sync_await import _sync_await

from components.k8s import ObjectDefaults, Protection, set_object_defaults
from components.policy_engine import CataloguePolicy
from components.service_mesh import MeshPermissions, MeshPermissionsArgs
from stacks.catalogue import CatalogueContext, build_catalogue, catalogue_permissions
from stacks.config import CatalogueStackConfig
from stacks.loader import ConfigError, catalogue_policies
from stacks.platform import kubernetes_provider, provider_annotations

CONTEXT_OUTPUT = "catalogueContext"


def registration_problems(cfg: CatalogueStackConfig, context: dict[str, Any]) -> list[str]:
    """Why the platform stack does not accept this catalogue (empty: it does)."""
    registered = dict(context.get("catalogues") or {})
    owned = registered.get(cfg.name)
    if owned is None:
        known = ", ".join(sorted(registered)) or "none"
        return [
            f"catalogue {cfg.name} is not registered on {cfg.platform_stack} (registered: {known}); "
            f"add it to the platform's `catalogues` with the namespaces it owns"
        ]
    problems = [
        f"namespace {ns} is not one the platform gave catalogue {cfg.name} (it owns: {', '.join(owned)})"
        for ns in cfg.owned_namespaces
        if ns not in owned
    ]
    if context.get("environment") != cfg.environment:
        problems.append(f"environment is {cfg.environment}, the platform stack's is {context.get('environment')}")
    if cfg.catalogue.policed and not context.get("policy"):
        apis = ", ".join(api.name for api in cfg.catalogue.policed)
        problems.append(f"APIs {apis} have a policy, but the platform runs no policy engine (its policy.enabled)")
    return problems


def catalogue_policy(cfg: CatalogueStackConfig, context: dict[str, Any]) -> CataloguePolicy | None:
    """How the catalogue's APIs ask the platform's OPA; its policies go to the ConfigMap reserved for it."""
    engine = context.get("policy")
    if not engine or not cfg.catalogue.policed:
        return None
    return CataloguePolicy(
        catalogue=cfg.name,
        namespace=engine["namespace"],
        config_map=engine["configMaps"][cfg.name],
        port=int(engine["port"]),
        rules={f.package[2]: f.source for f in catalogue_policies(cfg) if f.package},
    )


def platform_context(cfg: CatalogueStackConfig, source: str) -> dict[str, Any]:
    """The platform stack's `catalogueContext`, read now: the SDK waits for the StackReference the
    way it waits for a function invoke (its synchronous `invoke` uses the same `_sync_await`)."""
    platform = pulumi.StackReference(cfg.platform_stack)
    details = _sync_await(platform.get_output_details(CONTEXT_OUTPUT))
    context = details.value if details.value is not None else details.secret_value
    if not isinstance(context, dict):
        raise ConfigError(
            f"{source}: the platform stack {cfg.platform_stack} has no {CONTEXT_OUTPUT} output "
            "(deploy it first, with a version of the platform that exports it)"
        )
    problems = registration_problems(cfg, context)
    if problems:
        listed = "\n  - ".join(problems)
        raise ConfigError(f"{source}: refused by the platform stack {cfg.platform_stack}:\n  - {listed}")
    return context


def build_catalogue_stack(cfg: CatalogueStackConfig, source: str) -> dict[str, Any]:
    """Register every resource of a catalogue stack; returns the stack outputs."""
    context = platform_context(cfg, source)
    set_object_defaults(ObjectDefaults(labels=dict(cfg.labels), annotations=provider_annotations(cfg.cluster)))
    opts = pulumi.ResourceOptions(providers=[kubernetes_provider(cfg.cluster)])

    catalogue = build_catalogue(
        cfg.catalogue,
        CatalogueContext(
            ingress_class=context["ingressClass"],
            issuer=context["issuer"],
            certificate_duration=context["certificateDuration"],
            renew_before=context["renewBefore"],
            protection=Protection.of(cfg.protection),
            consumers_namespace=cfg.consumer_namespace,
            policy=catalogue_policy(cfg, context),
        ),
        opts,
    )
    MeshPermissions(
        "mesh-permissions",
        MeshPermissionsArgs(
            permissions=catalogue_permissions(cfg.catalogue.apis, [], [], prefix=f"{cfg.name}-"),
            gateway_sources=context["gatewaySources"],
            monitoring_sources=context["monitoringSources"],
            namespace=context["meshNamespace"],
            mesh_name=context["meshName"],
        ),
        opts,
    )
    return {
        "catalogue": cfg.name,
        "platformStack": cfg.platform_stack,
        "apiHosts": sorted({host for api in cfg.catalogue.apis for host in api.hosts}),
        **catalogue.outputs(),
    }
