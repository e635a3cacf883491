"""Run the policy pack's validators in-process on recorded resources (no CLI needed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from inspect import isawaitable
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.policies import POLICIES
from tests.harness import ROOT, RecordedResource

Violations = dict[str, list[str]]


def stack_config(stack: str) -> dict[str, dict[str, Any]]:
    """Per-policy config from policy/config/<stack>.json (enforcement levels dropped)."""
    raw = json.loads((ROOT / "policy" / "config" / f"{stack}.json").read_text())
    return {
        name: {k: v for k, v in value.items() if k != "enforcementLevel"}
        for name, value in raw.items()
        if isinstance(value, dict)
    }


def _options(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )


def _run(result: Any) -> None:
    if isawaitable(result):
        asyncio.new_event_loop().run_until_complete(result)


def validate_resource(
    policy: ResourceValidationPolicy,
    resource_type: str,
    props: Mapping[str, Any],
    config: Mapping[str, Any],
    name: str = "resource",
) -> list[str]:
    found: list[str] = []
    args = ResourceValidationArgs(
        resource_type, props, f"urn:pulumi:test::p::{resource_type}::{name}", name, _options(), None, dict(config)
    )
    _run(policy.validate(args, lambda message, urn=None: found.append(message)))  # type: ignore[misc]
    return found


def policy_resources(resources: list[RecordedResource]) -> list[PolicyResource]:
    by_urn: dict[str, PolicyResource] = {}
    for r in resources:
        by_urn[r.urn] = PolicyResource(r.type, r.inputs, r.urn, r.name, _options(r.protect), None, None, [], {})
    for r in resources:
        by_urn[r.urn].dependencies.extend(by_urn[d] for d in r.dependencies if d in by_urn)
    return list(by_urn.values())


def validate_stack(
    policy: StackValidationPolicy, resources: list[RecordedResource], config: Mapping[str, Any]
) -> list[str]:
    found: list[str] = []
    args = StackValidationArgs(policy_resources(resources), dict(config))
    _run(policy.validate(args, lambda message, urn=None: found.append(message)))  # type: ignore[misc]
    return found


def run_pack(resources: list[RecordedResource], stack: str) -> Violations:
    """Every policy over every resource, as `pulumi preview --policy-pack` would; name -> messages."""
    config = stack_config(stack)
    violations: Violations = {}
    for policy in POLICIES:
        policy_config = config.get(policy.name, {})
        if isinstance(policy, StackValidationPolicy):
            found = validate_stack(policy, resources, policy_config)
        elif isinstance(policy, ResourceValidationPolicy):
            found = [
                message
                for r in resources
                if r.custom
                for message in validate_resource(policy, r.type, r.inputs, policy_config, r.name)
            ]
        else:
            raise TypeError(f"unexpected policy type {type(policy).__name__}")
        if found:
            violations[policy.name] = found
    return violations
