"""TLS: cert-manager and the platform's issuers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.models.base import (
    ExactVersion,
    HelmReleaseConfig,
    K8sName,
    Repository,
    ResourcesConfig,
    StrictModel,
    resources,
)


class CertManagerRelease(HelmReleaseConfig):
    """cert-manager: controller, webhook and CA injector."""

    chart: str = "cert-manager"
    version: ExactVersion = "v1.21.1"
    repository: Repository = "https://charts.jetstack.io"
    namespace: K8sName = "cert-manager"
    resources: ResourcesConfig = resources("50m", "128Mi", "500m", "512Mi")


class CertManagerConfig(StrictModel):
    """cert-manager and the platform's issuers."""

    release: CertManagerRelease = CertManagerRelease()
    acme_email: str | None = Field(
        default=None, pattern=r"^[^@\s]+@[^@\s]+$", description="enables the Let's Encrypt issuer (HTTP-01 via Kong)"
    )
    acme_server: str = Field(
        default="https://acme-v02.api.letsencrypt.org/directory",
        pattern=r"^https://",
        description="ACME directory (use the staging URL while testing)",
    )
    issuer: Literal["internal-ca", "letsencrypt"] = Field(
        default="internal-ca", description="which ClusterIssuer signs the gateway's certificates"
    )
    certificate_duration: str = Field(default="2160h", pattern=r"^[0-9]+h$")
    renew_before: str = Field(default="720h", pattern=r"^[0-9]+h$")

    @model_validator(mode="after")
    def _letsencrypt_needs_email(self) -> CertManagerConfig:
        if self.issuer == "letsencrypt" and not self.acme_email:
            raise ValueError("issuer letsencrypt needs acmeEmail")
        if int(self.renew_before[:-1]) >= int(self.certificate_duration[:-1]):
            raise ValueError(f"renewBefore ({self.renew_before}) must be shorter than certificateDuration")
        return self
