"""Shared fixtures: whole-stack recordings are computed once per session (they are read-only)."""

from __future__ import annotations

import pytest

from tests.harness import Recording, run_program

STACKS = ("dev", "prod")


@pytest.fixture(scope="session")
def recordings() -> dict[str, Recording]:
    runs = {stack: run_program(stack) for stack in STACKS}
    for stack, run in runs.items():
        assert run.error is None, f"{stack} stack failed under mocks: {run.error}"
    return runs


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def recording(recordings: dict[str, Recording], stack: str) -> Recording:
    return recordings[stack]
