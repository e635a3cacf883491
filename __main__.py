"""Pulumi entry point: load the typed stack config, compose the platform, export outputs."""

import pulumi

from stacks.loader import ConfigError, load_platform_config
from stacks.platform import build_platform
from stacks.secrets import load_secrets

try:
    config = load_platform_config()
    secrets = load_secrets(config)
except ConfigError as error:
    # RunError is shown as one message, without a Python traceback, and nothing is registered.
    raise pulumi.RunError(str(error)) from None

for output_name, value in build_platform(config, secrets).items():
    pulumi.export(output_name, value)
