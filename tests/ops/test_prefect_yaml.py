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

#: The jobs and cadences users rely on (README "Jobs", docs/operations.md).
SCHEDULES = {
    "ingest-candles": "*/5 * * * *",
    "snapshot-orderbooks": "* * * * *",
    "refresh-derivatives": "*/15 * * * *",
    "generate-playbooks": "5 * * * *",
    "nightly": "0 2 * * *",
    "backfill": None,
}


def _flow(entrypoint: str):
    path, name = entrypoint.split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def _limit(deployment: dict) -> int | None:
    limit = deployment.get("concurrency_limit")
    return limit["limit"] if isinstance(limit, dict) else limit


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
    assert _limit(deployment) == 1  # a slow run is never overlapped by the next
    if deployment.get("schedules"):  # a scheduled job that hangs is stopped by its timeout
        assert flow.timeout_seconds and flow.timeout_seconds <= 4 * 3600, name
    for parameter in accepted.values():  # the UI renders a form field from each annotation
        assert parameter.annotation is not inspect.Parameter.empty, (name, parameter.name)


@pytest.mark.parametrize("name,cron", sorted(SCHEDULES.items()))
def test_jobs_run_at_their_documented_cadence(name, cron):
    crons = [s["cron"] for s in DEPLOYMENTS[name].get("schedules") or []]
    assert crons == ([cron] if cron else [])


def test_series_are_not_pinned_in_the_deployments_but_come_from_the_settings_file():
    for deployment in DEPLOYMENTS.values():
        parameters = deployment.get("parameters") or {}
        assert not {"exchanges", "markets", "symbols"} & set(parameters), deployment["name"]


def test_pull_step_sets_an_absolute_directory_filled_in_at_deploy_time():
    (step,) = SPEC["pull"]
    directory = step["prefect.deployments.steps.set_working_directory"]["directory"]
    assert directory == "{{ $VECTORFLOW_HOME }}"


def test_parameters_schema_matches_each_flow():
    """What `prefect deploy` sends as the UI form: every parameter typed, lists as arrays."""
    from prefect.utilities.callables import parameter_schema

    for deployment in DEPLOYMENTS.values():
        flow = _flow(deployment["entrypoint"])
        schema = parameter_schema(flow.fn).model_dump_for_openapi()
        properties = schema["properties"]
        assert set(properties) == set(inspect.signature(flow.fn).parameters)
        if "exchanges" in properties:
            kinds = [a.get("type") for a in properties["exchanges"]["anyOf"]]
            assert "array" in kinds and "null" in kinds
