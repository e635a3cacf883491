"""An API catalogue: its APIs, consumers and pinned hosts, the edge settings of the platform's own,
and the registration of a team's catalogue stack."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from components.models.apis import ApiConfig
from components.models.base import Hostname, K8sName, StrictModel, dns_label, name_hint
from components.models.policy import PLATFORM_CATALOGUE
from components.pins import ca_certificate, certificate_pin


def _rsa_public_key(value: str) -> str:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey  # noqa: PLC0415 - only here
    from cryptography.hazmat.primitives.serialization import load_pem_public_key  # noqa: PLC0415

    try:
        key = load_pem_public_key(value.encode())
    except ValueError:
        raise ValueError("is not a PEM public key") from None
    if not isinstance(key, RSAPublicKey):
        raise ValueError("is not an RSA public key (RS256 needs RSA)")
    if key.key_size < 2048:
        raise ValueError(f"is a {key.key_size}-bit RSA key; RS256 needs at least 2048 bits")
    return value


class JwtKeyConfig(StrictModel):
    """An RS256 verification key: the issuer's public key (the JWT `iss` claim names it)."""

    issuer: str = Field(min_length=1, description="value of the token's iss claim")
    public_key: Annotated[str, AfterValidator(_rsa_public_key)]


class ConsumerConfig(StrictModel):
    """An API consumer and its credentials."""

    username: K8sName
    groups: list[K8sName] = Field(default_factory=list)
    jwt_keys: list[JwtKeyConfig] = Field(default_factory=list, description="RS256 public keys of external issuers")
    generate_jwt_key: bool = Field(default=False, description="generate an RS256 key pair for a service client")
    api_key_rotations: list[str] = Field(
        default_factory=list,
        description="one API key per rotation id; add a new id to rotate, drop the old one to revoke it",
    )
    oauth2_client: bool = Field(default=False, description="an OAuth2 client-credentials client")

    @model_validator(mode="after")
    def _unique_rotations(self) -> ConsumerConfig:
        if len(set(self.api_key_rotations)) != len(self.api_key_rotations):
            raise ValueError(f"consumer {self.username}: apiKeyRotations repeat an id")
        for rotation in self.api_key_rotations:
            dns_label(rotation)
        return self


class EdgeProtectionConfig(StrictModel):
    """DDoS guards at the edge (coarse per-client limits live in the mesh)."""

    ip_allow_list: list[str] = Field(default_factory=list, description="CIDRs; when set, all others are refused")
    ip_deny_list: list[str] = Field(default_factory=list)
    bot_deny_user_agents: list[str] = Field(default_factory=lambda: ["(?i)masscan", "(?i)sqlmap", "(?i)nikto"])
    client_header_timeout_s: int = Field(default=10, ge=1, le=300)
    client_body_timeout_s: int = Field(default=30, ge=1, le=600)


class PinnedHostConfig(StrictModel):
    """A gateway host whose serving key clients may pin: the program owns its keys, so the key survives
    certificate renewals (cert-manager rotationPolicy Never), and a prepared backup key is pinned too."""

    host: Hostname
    keys: list[K8sName] = Field(
        min_length=2,
        description="key ids, the serving key first; the rest are backups whose pins clients hold as well. "
        "Rotating = moving a backup to the front",
    )

    @model_validator(mode="after")
    def _distinct(self) -> PinnedHostConfig:
        if len(set(self.keys)) != len(self.keys):
            raise ValueError(f"pinned host {self.host}: key ids repeat: {self.keys}")
        return self


class CatalogueConfig(StrictModel):
    """An API catalogue: APIs, consumers, pinned hosts and how their limits are counted. The
    platform stack's own (`catalogue`), or a team's catalogue stack (see CatalogueStackConfig)."""

    apis: list[ApiConfig] = Field(default_factory=list)
    consumers: list[ConsumerConfig] = Field(default_factory=list)
    pinned_hosts: list[PinnedHostConfig] = Field(
        default_factory=list, description="hosts whose serving keys clients pin (gatewayPins output)"
    )
    rate_limit_policy: Literal["local", "redis", "cluster"] = Field(
        default="local", description="local: per-pod counters; redis: shared; cluster: in PostgreSQL"
    )
    redis_host: str | None = None
    oauth2_token_ttl_s: int = Field(default=3600, ge=60)

    @property
    def by_name(self) -> dict[str, ApiConfig]:
        return {api.name: api for api in self.apis}

    @property
    def namespaces(self) -> list[str]:
        """The namespaces the catalogue's objects live in, in order of first use."""
        return list(dict.fromkeys(api.backend.namespace for api in self.apis))

    @model_validator(mode="after")
    def _catalogue(self) -> CatalogueConfig:
        names = [a.name for a in self.apis]
        if len(set(names)) != len(names):
            raise ValueError(f"API names repeat: {sorted({n for n in names if names.count(n) > 1})}")
        users = [c.username for c in self.consumers]
        if len(set(users)) != len(users):
            raise ValueError(f"consumer usernames repeat: {sorted({u for u in users if users.count(u) > 1})}")
        groups = {g for c in self.consumers for g in c.groups}
        routes: dict[tuple[str, str], str] = {}
        for api in self.apis:
            unknown = sorted(set(api.allowed_groups) - groups)
            if unknown and api.auth != "oidc":  # the identity provider's groups are not ours to list
                raise ValueError(f"API {api.name}: allowedGroups {unknown} are not the group of any consumer")
            for host in api.hosts:
                for path in api.paths:
                    other = routes.setdefault((host, path), api.name)
                    if other != api.name:
                        raise ValueError(f"API {api.name}: {host}{path} is already routed by API {other}")
        if self.rate_limit_policy == "redis" and not self.redis_host:
            raise ValueError("rateLimitPolicy redis needs redisHost")
        hosts = {host for api in self.apis for host in api.hosts}
        pinned = [p.host for p in self.pinned_hosts]
        for host in pinned:
            if pinned.count(host) > 1:
                raise ValueError(f"pinnedHosts: {host} is listed twice")
            if host not in hosts:
                raise ValueError(f"pinnedHosts: {host} is not a host of any API ({name_hint(host, hosts)})")
        self._one_namespace_per_ca()
        check_api_references(self.apis)
        return self

    def _one_namespace_per_ca(self) -> None:
        """Kong stores a CA certificate once (its digest is unique) and the controller makes one per
        Secret, so a CA certificate's Secret can live in one namespace only."""
        seen: dict[str, tuple[str, str]] = {}
        for api in self.apis:
            external = api.backend.external
            for pem in external.ca_certificates if external else []:
                pin = certificate_pin(ca_certificate(pem))
                namespace, other = seen.setdefault(pin, (api.backend.namespace, api.name))
                if namespace != api.backend.namespace:
                    raise ValueError(
                        f"API {api.name}: its CA certificate (pin {pin}) is also trusted by API {other} in "
                        f"namespace {namespace}; Kong keeps one copy of a CA certificate, so APIs that trust "
                        "the same CA share a backend namespace"
                    )

    @property
    def pinned(self) -> dict[str, PinnedHostConfig]:
        return {p.host: p for p in self.pinned_hosts}

    def production_problems(self) -> list[str]:
        """What prod refuses in any catalogue."""
        return [
            *(
                f"API {api.name}: backend.external.pins are required in prod (one per CA certificate)"
                for api in self.apis
                if api.backend.external and not api.backend.external.pins
            ),
            *(
                f"API {api.name}: policy.failOpen is refused in prod (an unanswered policy question is a 503)"
                for api in self.apis
                if api.policy and api.policy.fail_open
            ),
        ]

    @property
    def policed(self) -> list[ApiConfig]:
        """The APIs whose requests Open Policy Agent decides."""
        return [api for api in self.apis if api.policy is not None]


def check_api_references(apis: list[ApiConfig]) -> None:
    """Backends call APIs of the same catalogue, in the mesh; AI routes name cluster Services."""
    by_name = {api.name: api for api in apis}
    for api in apis:
        unknown = sorted(set(api.backend.calls) - by_name.keys())
        if unknown:
            raise ValueError(f"API {api.name}: backend.calls names unknown APIs {unknown} (mesh permission)")
        external = sorted(called for called in api.backend.calls if by_name[called].backend.external)
        if external:
            raise ValueError(
                f"API {api.name}: backend.calls names {external}, whose backends are external "
                "(outside the mesh, nothing to permit)"
            )
        for target in api.ai_routing.targets() if api.ai_routing else []:
            if not re.match(r"^[a-z0-9-]+\.[a-z0-9-]+\.svc(\.cluster\.local)?$", target.host):
                raise ValueError(
                    f"API {api.name}: AI route host {target.host!r} must be a cluster Service "
                    "(<name>.<namespace>.svc) so the mesh can permit Kong to reach it"
                )


class ApisConfig(CatalogueConfig):
    """The platform stack's catalogue, with the gateway-wide edge settings."""

    edge: EdgeProtectionConfig = EdgeProtectionConfig()
    trusted_ips: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0", "::/0"], description="proxies whose client-IP header Kong trusts"
    )
    real_ip_header: str = "X-Forwarded-For"


class CatalogueRegistration(StrictModel):
    """A team's catalogue stack (project api-catalogue) and the application namespaces it owns: its
    objects live there and nowhere else, so catalogues never touch each other's objects."""

    name: K8sName
    namespaces: list[K8sName] = Field(min_length=1)

    @model_validator(mode="after")
    def _not_the_platform(self) -> CatalogueRegistration:
        if self.name == PLATFORM_CATALOGUE:
            raise ValueError(
                f"catalogue name {PLATFORM_CATALOGUE!r} is the platform's own (policy package apis.platform)"
            )
        return self
