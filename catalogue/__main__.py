"""Pulumi entry point of a team's catalogue stack: load its typed config, compose it on the platform
stack it names, export outputs. The code is the repository's (components/, stacks/)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi

from stacks.catalogue_stack import build_catalogue_stack
from stacks.config import CatalogueStackConfig
from stacks.loader import CATALOGUE, ConfigError, as_model, load_config, stack_file_name

try:
    config = as_model(load_config(CATALOGUE), CatalogueStackConfig)
    outputs = build_catalogue_stack(config, stack_file_name(pulumi.get_stack()))
except ConfigError as error:
    # One message, no traceback, nothing registered.
    raise pulumi.RunError(str(error)) from None

for output_name, value in outputs.items():
    pulumi.export(output_name, value)
