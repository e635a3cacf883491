"""The configuration models of each capability, validated before any resource is registered.

Components take them as their arguments and the stacks compose them into a stack's configuration
(stacks/config.py); they import nothing from stacks/. Keys are camelCase in YAML (the Pulumi
convention) and snake_case in Python."""
