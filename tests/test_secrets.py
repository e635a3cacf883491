"""Secure keys: required ones must be set, and only as secrets; nothing registers otherwise."""

from __future__ import annotations

import pulumi

from tests.harness import PLACEHOLDER_SECRETS, run_program


def test_prod_backups_need_both_credentials() -> None:
    run = run_program("prod", secrets={})
    assert isinstance(run.error, pulumi.RunError)
    message = str(run.error)
    assert message.startswith("Pulumi.prod.yaml: missing or unprotected secrets:")
    assert "api-platform:backupAccessKeyId: required" in message
    assert "api-platform:backupSecretAccessKey: required" in message
    assert "pulumi config set --secret backupSecretAccessKey" in message
    assert run.resources == []


def test_a_secret_set_in_plain_text_is_refused() -> None:
    plain = {"api-platform:backupAccessKeyId": "AKIA-PLAIN"}
    run = run_program(
        "prod", secrets={k: v for k, v in PLACEHOLDER_SECRETS.items() if k not in plain}, extra_config=plain
    )
    assert isinstance(run.error, pulumi.RunError)
    assert "api-platform:backupAccessKeyId: is stored in plain text" in str(run.error)
    assert run.resources == []


def test_dev_needs_no_secrets() -> None:
    run = run_program("dev", secrets={})
    assert run.error is None


def test_an_existing_credentials_secret_replaces_the_keys() -> None:
    run = run_program("prod", secrets={}, mutate=lambda p: p["postgres"]["backup"].update(credentialsSecret="s3"))
    assert run.error is None
