"""The catalogue part of a composition: APIs, pinned hosts, consumers and the mesh permissions they
imply, from a CatalogueConfig and what the platform provides. The platform stack builds its own
catalogue with it; a team's catalogue stack (stacks/catalogue_stack.py) builds its catalogue with
the platform stack's outputs, so both deploy the same objects from the same configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.k8s import Protection
from components.kong_apis import EdgeSpec, KongApis, KongApisArgs
from components.kong_consumers import KongConsumers, KongConsumersArgs
from components.models.apis import ApiConfig, BackendKey
from components.models.catalogue import CatalogueConfig
from components.pinned_hosts import PinnedHosts, PinnedHostsArgs, pinned_secret_name
from components.policy_engine import CataloguePolicies, CataloguePolicy
from components.service_mesh import Permission, Workload


@dataclass(frozen=True)
class CatalogueContext:
    """What the platform provides a catalogue (plain values in the platform stack, the platform
    stack's outputs in a team's catalogue stack)."""

    ingress_class: pulumi.Input[str]
    issuer: pulumi.Input[str]  # ClusterIssuer of the gateway certificates
    certificate_duration: pulumi.Input[str]
    renew_before: pulumi.Input[str]
    protection: Protection
    consumers_namespace: str
    edge: EdgeSpec | None = None  # the gateway-wide plugins: the platform's catalogue only
    policy: CataloguePolicy | None = None  # how its APIs ask OPA (None: the platform runs none)
    depends_on: list[pulumi.Resource] = field(default_factory=list)


@dataclass(frozen=True)
class Catalogue:
    apis: KongApis
    pinned_hosts: PinnedHosts
    consumers: KongConsumers

    def outputs(self) -> dict[str, Any]:
        consumers = self.consumers
        return {
            # What clients pin for the pinned hosts: the served key and every key's pin-sha256.
            "gatewayPins": self.pinned_hosts.pins,
            "consumerApiKeys": pulumi.Output.secret(consumers.api_keys),
            "consumerOauth2Clients": pulumi.Output.secret(consumers.oauth2_clients),
            "consumerJwtPrivateKeys": pulumi.Output.secret(consumers.jwt_private_keys),
        }


def build_catalogue(catalogue: CatalogueConfig, context: CatalogueContext, opts: pulumi.ResourceOptions) -> Catalogue:
    pinned = PinnedHosts(
        "pinned-hosts",
        PinnedHostsArgs(
            hosts=list(catalogue.pinned_hosts),
            namespaces={
                p.host: sorted({api.backend.namespace for api in catalogue.apis if p.host in api.hosts})
                for p in catalogue.pinned_hosts
            },
            issuer=context.issuer,
            certificate_duration=context.certificate_duration,
            renew_before=context.renew_before,
            protection=context.protection,
            depends_on=context.depends_on,
        ),
        opts,
    )
    apis = KongApis(
        "apis",
        KongApisArgs(
            catalogue=catalogue,
            ingress_class=context.ingress_class,
            issuer=context.issuer,
            certificate_duration=context.certificate_duration,
            renew_before=context.renew_before,
            edge=context.edge,
            pinned_tls={p.host: pinned_secret_name(p.host, p.keys[0]) for p in catalogue.pinned_hosts},
            policy=context.policy,
            depends_on=context.depends_on,
        ),
        opts,
    )
    if context.policy and catalogue.policed:
        data = {api.name: api.policy.data for api in catalogue.policed if api.policy}
        CataloguePolicies("policies", context.policy, data, opts)
    consumers = KongConsumers(
        "consumers",
        KongConsumersArgs(
            namespace=context.consumers_namespace,
            ingress_class=context.ingress_class,
            consumers=list(catalogue.consumers),
            protection=context.protection,
            depends_on=context.depends_on,
        ),
        opts,
    )
    return Catalogue(apis, pinned, consumers)


def backend_workload(api: ApiConfig, prefix: str = "") -> Workload:
    """The data planes of an API's backend in the mesh, named after the API."""
    return Workload(prefix + api.name, api.backend.namespace, api.backend.selector or {})


def catalogue_permissions(
    apis: list[ApiConfig], leading: list[Workload], trailing: list[Workload], prefix: str = ""
) -> list[Permission]:
    """Deny by default; allow exactly what the catalogue implies.

    One permission per distinct backend in the mesh (namespace and selector), named after the first
    API routed to it (APIs that share a backend share its permission), allowing `leading`, the
    backends that call it, then `trailing`; and one per AI upstream, allowing `leading`. `prefix`
    keeps a team catalogue's names apart from every other catalogue's in the mesh namespace.
    """
    backends: dict[BackendKey, Workload] = {}
    for api in apis:
        if api.backend.selector:  # an external backend is outside the mesh
            backends.setdefault(api.backend.workload, backend_workload(api, prefix))
    callers: dict[BackendKey, list[Workload]] = {key: [] for key in backends}
    by_name = {api.name: api for api in apis}
    for caller in apis:
        for called in caller.backend.calls:  # both in the mesh (components.models.catalogue checks)
            caller_workload = backends[caller.backend.workload]
            sources = callers[by_name[called].backend.workload]
            if caller_workload not in sources:
                sources.append(caller_workload)
    permissions = [Permission(backend, [*leading, *callers[key], *trailing]) for key, backend in backends.items()]
    ai_targets = {(t.host, t.port) for api in apis if api.ai_routing for t in api.ai_routing.targets()}
    for host, port in sorted(ai_targets):
        service, namespace = host.split(".")[:2]
        upstream = Workload(f"{prefix}{service}-{port}", service_tag=f"{service}_{namespace}_svc_{port}")
        permissions.append(Permission(upstream, list(leading)))
    return permissions
