"""The APIs of a catalogue: routes, backends (in the cluster or external and pinned), AI routing,
OpenID Connect, rate limits."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from components.models.base import Hostname, K8sName, Labels, StrictModel
from components.models.policy import ApiPolicyConfig
from components.pins import PIN, ca_certificate, certificate_pin


class RateLimitConfig(StrictModel):
    """Requests allowed per window: by client IP on public APIs, by consumer on authenticated ones."""

    second: int | None = Field(default=None, ge=1)
    minute: int | None = Field(default=None, ge=1)
    hour: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _some_window(self) -> RateLimitConfig:
        if self.second is None and self.minute is None and self.hour is None:
            raise ValueError("set at least one of second, minute, hour")
        return self


BackendKey = tuple[str, tuple[tuple[str, str], ...]]  # namespace, sorted pod selector


def _ca_certificate(value: str) -> str:
    ca_certificate(value)
    return value


def _pin(value: str) -> str:
    if not PIN.match(value):
        raise ValueError(
            f"{value!r} is not a SHA-256 SPKI pin (base64 of 32 bytes, 44 characters ending in '='; "
            "openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)"
        )
    return value


CaCertificate = Annotated[str, AfterValidator(_ca_certificate)]
Pin = Annotated[str, AfterValidator(_pin)]


class ExternalBackendConfig(StrictModel):
    """An upstream outside the cluster and the mesh, reached over TLS that Kong verifies against these
    CA certificates only (never the system trust store), each pinned by its key."""

    host: Hostname = Field(description="the upstream's DNS name: Kong connects, sends SNI and verifies it")
    ca_certificates: list[CaCertificate] = Field(
        min_length=1, description="PEM CA certificates Kong trusts for this upstream, one per entry"
    )
    pins: list[Pin] = Field(
        default_factory=list,
        description="SHA-256 SPKI pins of exactly these CA certificates, from the upstream's owner (prod: required)",
    )
    verify_depth: int = Field(default=1, ge=0, le=9, description="CA certificates allowed above the server's")

    @model_validator(mode="after")
    def _pinned(self) -> ExternalBackendConfig:
        if re.search(r"\.svc(\.cluster\.local)?$", self.host):
            raise ValueError(f"external host {self.host!r} is a cluster Service: use backend.selector")
        if not self.pins:
            return self
        actual = {certificate_pin(ca_certificate(pem)): ca_certificate(pem) for pem in self.ca_certificates}
        for pin in self.pins:
            if pin not in actual:
                raise ValueError(
                    f"pin {pin} matches none of caCertificates (their pins: {', '.join(sorted(actual))}): "
                    "the certificate is not the one its owner named"
                )
        for pin, certificate in actual.items():
            if pin not in self.pins:
                raise ValueError(f"caCertificates: {certificate.subject.rfc4514_string()} is not pinned (pin {pin})")
        return self


class BackendConfig(StrictModel):
    """What an API routes to: pods in the cluster (by selector, reached through the mesh) or an external
    upstream (by host, over verified TLS). Kong reaches either through a Service the platform owns."""

    namespace: K8sName = Field(description="where the platform's Service for this backend lives")
    selector: Labels | None = Field(default=None, min_length=1, description="labels of the backend pods")
    external: ExternalBackendConfig | None = None
    port: int = Field(ge=1, le=65535)
    health_path: str = Field(default="/healthz", pattern=r"^/", description="active health check path")
    calls: list[K8sName] = Field(
        default_factory=list, description="APIs whose backends this backend calls (mesh permissions)"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> BackendConfig:
        if (self.selector is None) == (self.external is None):
            raise ValueError("set exactly one of selector (pods in the cluster) and external (an upstream outside it)")
        if self.external is not None and self.calls:
            raise ValueError("calls: an external backend is outside the mesh; it has no mesh permissions to grant")
        return self

    @property
    def workload(self) -> BackendKey:
        """What the mesh selects: APIs with the same namespace and selector share a backend."""
        return self.namespace, tuple(sorted((self.selector or {}).items()))


class AiTargetConfig(StrictModel):
    """An upstream of the ai-router plugin: a cluster Service's host and port."""

    host: str = Field(min_length=1, description="upstream host, e.g. gpt.ai-services.svc")
    port: int = Field(ge=1, le=65535)


class AiRouteConfig(AiTargetConfig):
    """One model's upstream."""

    model: str = Field(min_length=1)


class AiFallbackConfig(AiTargetConfig):
    """A fallback upstream and its share of unrouted AI traffic."""

    weight: int = Field(ge=1, le=1000)


class AiRoutingConfig(StrictModel):
    """Route AI requests by model (header, else JSON body field) with a weighted fallback."""

    header: str = "x-model"
    body_field: str | None = "model"
    routes: list[AiRouteConfig] = Field(default_factory=list)
    fallback: list[AiFallbackConfig] = Field(min_length=1)

    def targets(self) -> list[AiTargetConfig]:
        return [*self.routes, *self.fallback]


def _https_issuer(value: str) -> str:
    if not re.match(r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[^\s?#]*)?$", value):
        raise ValueError(
            f"{value!r} is not an https issuer URL (https://host[:port][/path], no query or fragment): "
            "tokens and keys are only trusted from the identity provider over TLS"
        )
    return value


class OidcConfig(StrictModel):
    """Bearer tokens of an OpenID Connect provider, validated at the gateway by the oidc-jwt plugin:
    keys from the issuer's discovery document, refreshed when the provider rotates them."""

    issuer: Annotated[str, AfterValidator(_https_issuer)] = Field(
        description="exactly the tokens' iss claim; <issuer>/.well-known/openid-configuration is its discovery"
    )
    audiences: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="a token's aud must name one of these"
    )
    required_scopes: list[str] = Field(default_factory=list, description="scopes every token must carry (else 403)")
    required_claims: dict[str, str] = Field(default_factory=dict, description="claim values every token must carry")
    groups_claim: str = Field(default="groups", description="the claim whose values the acl plugin checks")
    consumer_claim: str | None = Field(default=None, description="a claim naming a Kong consumer to attach")
    hide_credentials: bool | None = Field(
        default=None,
        description="keep the bearer token from the upstream (default: on for an external upstream, so the "
        "organisation's tokens never reach a third party; off for a backend in the cluster)",
    )
    leeway_seconds: int = Field(default=60, ge=0, le=300, description="clock skew allowed on exp, nbf and iat")
    jwks_cache_seconds: int = Field(default=3600, ge=60, le=86400)
    min_refresh_seconds: int = Field(
        default=30, ge=1, le=3600, description="floor between key refreshes caused by unknown key ids"
    )


class ApiConfig(StrictModel):
    """One API of the catalogue."""

    name: K8sName
    hosts: list[Hostname] = Field(min_length=1)
    paths: list[str] = Field(default_factory=lambda: ["/"])
    backend: BackendConfig
    auth: Literal["jwt", "key-auth", "oauth2", "oidc", "none"] = "jwt"
    oidc: OidcConfig | None = Field(default=None, description="the identity provider (auth oidc)")
    allowed_groups: list[str] = Field(
        default_factory=list,
        description="groups allowed (ACL): consumer groups, or with auth oidc the token's groups claim",
    )
    scopes: list[str] = Field(default_factory=list, description="OAuth2 scopes (auth oauth2)")
    rate_limit: RateLimitConfig = RateLimitConfig(minute=600)
    retries: int = Field(default=2, ge=0, le=10)
    connect_timeout_ms: int = Field(default=2000, ge=1)
    read_timeout_ms: int = Field(default=60000, ge=1)
    write_timeout_ms: int = Field(default=60000, ge=1)
    max_body_mb: int = Field(default=8, ge=1, le=1024)
    ai_routing: AiRoutingConfig | None = None
    policy: ApiPolicyConfig | None = Field(
        default=None, description="Open Policy Agent decides every request (the third authorization layer)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ApiConfig:
        for path in self.paths:
            if not path.startswith("/"):
                raise ValueError(f"API {self.name}: path {path!r} must start with /")
        if self.auth == "none" and self.allowed_groups:
            raise ValueError(f"API {self.name}: allowedGroups need an authenticated API (auth is none)")
        if self.scopes and self.auth != "oauth2":
            raise ValueError(f"API {self.name}: scopes apply to auth oauth2 only")
        if (self.auth == "oidc") != (self.oidc is not None):
            raise ValueError(f"API {self.name}: auth oidc and the oidc settings (issuer, audiences) go together")
        return self
