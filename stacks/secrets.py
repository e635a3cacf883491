"""Secure configuration keys: secrets live in their own `--secret` keys, never in the platform object.

Each key is read as a secret Output. A key that the validated config needs but that is missing,
or that was set in plain text, stops the program before any resource is registered.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from stacks.config import PlatformConfig
from stacks.loader import (
    BACKUP_ACCESS_KEY_ID,
    BACKUP_SECRET_ACCESS_KEY,
    PROJECT,
    SECURE_KEYS,
    ConfigError,
    stack_file_name,
)


@dataclass(frozen=True)
class StackSecrets:
    backup_access_key_id: pulumi.Output[str] | None = None
    backup_secret_access_key: pulumi.Output[str] | None = None


def required_keys(cfg: PlatformConfig) -> list[str]:
    backup = cfg.postgres.backup
    if backup.enabled and backup.credentials_secret is None:
        return [BACKUP_ACCESS_KEY_ID, BACKUP_SECRET_ACCESS_KEY]
    return []


def load_secrets(cfg: PlatformConfig) -> StackSecrets:
    source = stack_file_name(pulumi.get_stack())
    config = pulumi.Config(PROJECT)
    problems = []
    for key in SECURE_KEYS:
        full = f"{PROJECT}:{key}"
        if config.get(key) is not None and not pulumi.runtime.is_config_secret(full):
            problems.append(f"  - {full}: is stored in plain text; set it with `pulumi config set --secret {key} ...`")
    for key in required_keys(cfg):
        if config.get(key) is None:
            problems.append(
                f"  - {PROJECT}:{key}: required ({SECURE_KEYS[key]}, because postgres.backup is enabled without "
                f"credentialsSecret); set it with `pulumi config set --secret {key} ...`"
            )
    if problems:
        raise ConfigError(f"{source}: missing or unprotected secrets:\n" + "\n".join(problems))
    return StackSecrets(
        backup_access_key_id=config.get_secret(BACKUP_ACCESS_KEY_ID),
        backup_secret_access_key=config.get_secret(BACKUP_SECRET_ACCESS_KEY),
    )
