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


#: Every job's tag (the UI filters runs by tag).
TAGS = {
    "ingest-candles": ["candles"],
    "snapshot-orderbooks": ["market-data"],
    "refresh-derivatives": ["market-data"],
    "generate-playbooks": ["playbooks"],
    "nightly": ["backtests"],
    "backfill": ["candles"],
    "compact-lake": ["maintenance"],
    "replay-playbooks": ["playbooks"],
    "refresh-signals": ["maintenance"],
}
#: Parameters that are a choice among known values, and the choices a person must find there.
CHOICES = {
    "exchanges": {"binance", "bybit"},
    "markets": {"spot", "linear"},
    "timeframes": {"1m", "5m", "1h", "1d"},
    "strategies": {"ma_cross", "rsi_reversion"},
    "datasets": {"orderbook_levels", "candles"},  # market data's or the lake's
    "grid": {"default", "small"},
    "metric": {"sharpe_ratio"},
    "period": {"5m", "1h"},
    "mode": {"rest", "stream"},
}


def deployment_schema(name: str) -> dict:
    """What `prefect deploy` sends as the deployment's Run form (`parameter_openapi_schema`)."""
    from prefect.utilities.callables import parameter_schema

    flow = _flow(DEPLOYMENTS[name]["entrypoint"])
    return parameter_schema(flow).model_dump_for_openapi()


def check_run_form(name: str, schema: dict) -> None:
    """A deployment's form explains itself: every field described, typed (no `X | None`
    toggle, no null default), choices where there are choices, times as UTC date-times, and no
    data_dir."""
    properties = schema["properties"]
    assert "data_dir" not in properties, name
    for field, spec in properties.items():
        assert len(spec.get("description") or "") > 15, (name, field)
        assert "anyOf" not in spec and spec.get("type"), (name, field, spec)
        assert spec.get("default", "unset") is not None, (name, field)
        choices = set((spec.get("items") or spec).get("enum") or ())
        if field in CHOICES:
            assert choices and (choices & CHOICES[field]), (name, field, spec)
        if field in ("since", "until"):
            assert spec["format"] == "date-time" and spec["examples"], (name, field)
            assert "UTC" in spec["description"], (name, field)


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_each_run_form_explains_itself(name):
    schema = deployment_schema(name)
    check_run_form(name, schema)
    flow = _flow(DEPLOYMENTS[name]["entrypoint"])
    accepted = set(inspect.signature(flow.fn).parameters) - {"data_dir"}
    assert set(schema["properties"]) == accepted  # every other parameter is on the form
    assert DEPLOYMENTS[name]["tags"] == TAGS[name]


def test_the_backfill_form_requires_since_and_leaves_the_series_optional():
    schema = deployment_schema("backfill")
    assert schema["required"] == ["since"]
    assert "default" not in schema["properties"]["exchanges"]  # empty: the settings file's


def test_python_callers_keep_data_dir_and_plain_types():
    from flows.backfill import backfill_candles

    python = inspect.signature(backfill_candles.fn).parameters
    assert python["data_dir"].default is None and python["exchanges"].default is None
