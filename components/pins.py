"""Public-key pins: the base64 SHA-256 of a key's DER SubjectPublicKeyInfo (RFC 7469 `pin-sha256`).

One definition for both directions of pinning: the pins clients hold for the gateway's pinned
hosts (computed from the keys the program owns) and the pins the catalogue states for the CA
certificates the gateway trusts for an external upstream (checked against the certificates).
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

# 32 bytes in base64: 43 characters and one `=`.
PIN = re.compile(r"^[A-Za-z0-9+/]{43}=$")
PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----")


def spki_pin(spki_der: bytes) -> str:
    return base64.b64encode(hashlib.sha256(spki_der).digest()).decode()


def public_key_pin(public_key_pem: str) -> str:
    """The pin of a PEM public key (`openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`)."""
    key = load_pem_public_key(public_key_pem.encode())
    return spki_pin(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


def certificate_pin(certificate: x509.Certificate) -> str:
    return spki_pin(certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


def ca_certificate(pem: str, now: datetime | None = None) -> x509.Certificate:
    """The one CA certificate in `pem`, as Kong accepts a CA certificate: exactly one certificate,
    with the CA basic constraint, not expired. ValueError says which rule it breaks."""
    blocks = PEM_CERTIFICATE.findall(pem)
    if len(blocks) != 1:
        raise ValueError(f"holds {len(blocks)} PEM certificates; give one certificate per entry")
    try:
        certificate = x509.load_pem_x509_certificate(blocks[0].encode())
    except ValueError:
        raise ValueError("is not a readable PEM certificate") from None
    try:
        is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise ValueError(f"{certificate.subject.rfc4514_string()} is not a CA certificate (no CA basic constraint)")
    subject, expiry = certificate.subject.rfc4514_string(), certificate.not_valid_after_utc
    if expiry < (now or datetime.now(UTC)):
        raise ValueError(f"{subject} expired on {expiry:%Y-%m-%d}")
    return certificate
