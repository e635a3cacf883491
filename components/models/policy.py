"""Dynamic policy evaluation: Open Policy Agent beside every Kong pod, and what each API asks it.

The third layer of authorization after ACL groups and token scopes: APIs with a `policy` are
decided by the opa-authz Kong plugin asking OPA on loopback. The platform's own policy (the
emergency deny list, then each API's policy) lives in `rego/platform/`; an API brings its own rules
in package `apis.<catalogue>.<api>` (the platform's own catalogue is `platform`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from components.models.base import Image, ResourcesConfig, StrictModel, resources

OPA_IMAGE = "openpolicyagent/opa:1.22.3-static"
# The catalogue name of the platform stack's own catalogue in policy packages (apis.platform.<api>);
# no team catalogue may be registered under it.
PLATFORM_CATALOGUE = "platform"

# Headers that carry credentials or identity: never copied into OPA's input (the same list as
# kong-plugins/opa-authz/input.lua, which skips them whatever the configuration says).
IDENTITY_HEADERS = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "apikey",
    "x-authenticated-subject",
    "x-authenticated-issuer",
    "x-authenticated-scopes",
    "x-authenticated-groups",
    "x-authenticated-userid",
    "x-consumer-id",
    "x-consumer-custom-id",
    "x-consumer-username",
    "x-consumer-groups",
    "x-credential-identifier",
    "x-anonymous-consumer",
)


def _input_header(value: str) -> str:
    if not re.match(r"^[A-Za-z0-9_-]+$", value):
        raise ValueError(f"{value!r} is not a header name")
    if value.lower().replace("_", "-") in IDENTITY_HEADERS:
        raise ValueError(
            f"{value} carries credentials or identity, which a policy reads from what authentication "
            "established (input.consumer, input.groups, input.token), never from a header a client can set"
        )
    return value


def _rego_file(value: str) -> str:
    if not value.endswith(".rego") or value.startswith("/") or ".." in value.split("/"):
        raise ValueError(f"{value!r} must be a .rego file inside the project (a relative path)")
    return value


RegoFile = Annotated[str, AfterValidator(_rego_file)]


class PolicyEngineConfig(StrictModel):
    """Open Policy Agent beside every Kong pod: 127.0.0.1 only, its policies and data from ConfigMaps,
    reloaded when they change (a policy change is one ConfigMap update, no Kong rollout)."""

    enabled: bool = Field(default=True, description="run OPA beside Kong; APIs with a policy need it")
    image: Image = OPA_IMAGE
    resources: ResourcesConfig = resources("100m", "128Mi", "1", "256Mi")
    decision_port: int = Field(default=8181, ge=1024, le=65535, description="the Data API, on 127.0.0.1 only")
    diagnostic_port: int = Field(
        default=8282, ge=1024, le=65535, description="health and metrics, for probes and Prometheus"
    )
    rules: list[RegoFile] = Field(
        default_factory=lambda: ["rego/platform/gateway.rego"],
        description="the platform's policy (package platform.gateway, rule decision), relative to the project",
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="data.platform_data: e.g. the emergency deny list {deny: {consumers, subjects, networks}}",
    )
    decision_logs: bool = Field(default=True, description="every decision as a JSON line on OPA's stdout")

    @model_validator(mode="after")
    def _ports(self) -> PolicyEngineConfig:
        if self.decision_port == self.diagnostic_port:
            raise ValueError("decisionPort and diagnosticPort must differ")
        return self


class ApiPolicyConfig(StrictModel):
    """OPA decides every request of the API (after its ACL and scopes)."""

    rules: RegoFile | None = Field(
        default=None,
        description="the API's Rego file (package apis.<catalogue>.<api>: rules allow and reason), relative to "
        "the project; unset: the platform's policy alone decides",
    )
    data: dict[str, Any] = Field(default_factory=dict, description="data.catalogue_data.<catalogue>.<api>")
    fail_open: bool = Field(
        default=False, description="let requests through when OPA cannot answer (refused in prod; default 503)"
    )
    timeout_ms: int = Field(default=100, ge=1, le=5000, description="how long Kong waits for a decision")
    send_body: bool = Field(default=False, description="put the JSON body in input.request.body")
    max_body_bytes: int = Field(default=65536, ge=1024, le=1048576, description="the largest body sent to OPA")
    headers: list[Annotated[str, AfterValidator(_input_header)]] = Field(
        default_factory=list, description="request headers copied into input.request.headers (never identity ones)"
    )
    claims: list[str] = Field(default_factory=list, description="token claims copied into input.token.claims")
