"""The policy pack: `pulumi preview --policy-pack policy --policy-pack-config policy/config/<stack>.json`.

Only the PolicyPack lives here (constructing it starts a server that never returns); the policies
are in policies.py, where the tests import them.
"""

from policies import DEFAULT_ENFORCEMENT, POLICIES
from pulumi_policy import PolicyPack

PolicyPack(name="api-platform", enforcement_level=DEFAULT_ENFORCEMENT, policies=POLICIES)
