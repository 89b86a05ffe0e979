"""The katak8s policy pack: `pulumi preview --policy-pack policy` from the project root.

Constructing a PolicyPack starts the analyzer server and blocks, so this file only
builds it; the policies live in katak8s_policies.py where tests import them.
"""

from katak8s_policies import POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name="katak8s",
    description="Guard rails for katak8s stacks: network exposure, credential logging, Kata workloads.",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)
