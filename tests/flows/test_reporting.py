"""What runs tell a person: markdown tables, report links, one-line failures (no Prefect run)."""

from __future__ import annotations

import logging
import sys

from flows.failures import ENGINE_EXIT, ExpectedFailures
from flows.reporting import cell, markdown_table, report_link, tally
from vectorflow.config import load_settings
from vectorflow.errors import UnknownSymbol
from vectorflow.units import Status, Unit, UnitResult, UnitsFailed


def test_markdown_cells_are_rounded_and_parameters_read_as_assignments():
    assert cell(0.0355630298565884) == "0.03556"
    assert cell(-1234567.891) == "-1.235e+06"
    assert cell('{"fast": 10, "slow": 30}') == "fast=10 slow=30"  # the JSON the lake stores
    assert cell({"alpha": 2.5, "window": 20}) == "alpha=2.5 window=20"
    assert cell(None) == "—" and cell(7) == "7" and cell("a|b") == "a\\|b"


def test_a_markdown_table_has_every_column_of_any_row_in_first_seen_order():
    table = markdown_table([{"strategy": "ma_cross", "oos_sharpe": 1.23456}, {"dsr": 0.9}])
    assert table.splitlines() == [
        "| strategy | oos_sharpe | dsr |",
        "| --- | --- | --- |",
        "| ma_cross | 1.235 | — |",
        "| — | — | 0.9 |",
    ]


def test_a_report_links_to_where_the_reports_are_served(tmp_path):
    settings = load_settings(tmp_path, env={"VECTORFLOW_REPORTS_URL": "http://127.0.0.1:4201/"})
    report = settings.reports_dir / "backtest_binance_spot_BTC_USDT_1h.html"
    assert report_link(report, settings) == (
        "http://127.0.0.1:4201/backtest_binance_spot_BTC_USDT_1h.html"
    )
    local = load_settings(tmp_path, env={})  # nobody serves them: the file itself
    assert report_link(report, local) == report.as_uri()


def test_playbooks_are_tallied_by_status():
    unit = Unit("binance", "spot", "BTC/USDT", "1h", "playbooks")
    results = [UnitResult(unit, detail={"playbook": s}) for s in ("valid", "valid", "repaired")]
    results.append(UnitResult(unit, Status.FAILED, error="boom", detail={"playbook": "error"}))
    assert tally(results, "playbook") == "2 valid, 1 repaired, 1 error"


def _record(msg: str, error: BaseException) -> logging.LogRecord:
    try:
        raise error
    except BaseException:
        info = sys.exc_info()
    return logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 1, msg, (), info)


def test_expected_errors_keep_their_line_and_lose_the_traceback():
    keep = ExpectedFailures()
    refused = _record("Task run failed with exception: %r", UnknownSymbol("no 'NOPE/USDT'"))
    assert keep.filter(refused) and refused.exc_info is None
    closing = _record(ENGINE_EXIT, UnitsFailed("1 of 2 units failed: x", []))
    assert not keep.filter(closing)  # the final state's message says it already
    bug = _record("Task run failed with exception: %r", KeyError("close"))
    assert keep.filter(bug) and bug.exc_info is not None  # a bug keeps its traceback
