"""Every deployment in prefect.yaml points at a flow that imports, with parameters it accepts."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "prefect.yaml").read_text())
DEPLOYMENTS = {d["name"]: d for d in SPEC["deployments"]}


def _flow(entrypoint: str):
    path, name = entrypoint.split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_entrypoint_imports_and_parameters_match_the_signature(name):
    deployment = DEPLOYMENTS[name]
    flow = _flow(deployment["entrypoint"])
    accepted = inspect.signature(flow.fn).parameters
    assert set(deployment.get("parameters") or {}) <= set(accepted), name
    for schedule in deployment.get("schedules") or []:
        assert schedule["timezone"] == "UTC"
        for key in schedule.get("parameters") or {}:
            assert key in accepted
    assert deployment["work_pool"]["name"] == "vectorflow"
    assert deployment.get("concurrency_limit") == 1  # a slow run is never overlapped by the next


def test_pull_step_sets_an_absolute_directory_filled_in_at_deploy_time():
    (step,) = SPEC["pull"]
    directory = step["prefect.deployments.steps.set_working_directory"]["directory"]
    assert directory == "{{ $VECTORFLOW_HOME }}"
