"""The SDK's floor for the catalogue benchmark: N trivial resources, nothing else."""

import pulumi


class Trivial(pulumi.CustomResource):
    def __init__(self, name: str) -> None:
        super().__init__("benchmark:index:Trivial", name, {"value": name})


for index in range(int(pulumi.Config("benchmark").require("count"))):
    Trivial(f"trivial-{index}")
