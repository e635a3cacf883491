"""Pulumi entry point: load the typed stack config, compose the platform, export outputs."""

import pulumi

from components.k8s import ChartRenderError
from stacks.loader import ConfigError, load_platform_config
from stacks.platform import build_platform
from stacks.secrets import load_secrets

try:
    config = load_platform_config()
    secrets = load_secrets(config)
    outputs = build_platform(config, secrets)
except (ConfigError, ChartRenderError) as error:
    # RunError is shown as one message, without a Python traceback. A configuration error stops
    # the program before anything is registered; a chart that does not render stops the preview.
    raise pulumi.RunError(str(error)) from None

for output_name, value in outputs.items():
    pulumi.export(output_name, value)
