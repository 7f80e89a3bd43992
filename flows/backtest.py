"""The `backtest` flow: every strategy's grid on one stored series, results to the lake."""

from __future__ import annotations

import math
import re
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.states import Failed

from tasks.backtest import backtest_series_task
from tasks.candles import refresh_catalog_task
from vectorflow.backtest.config import SeriesRef
from vectorflow.backtest.run import BacktestRequest, check_request
from vectorflow.settings import load_settings

LEADER_COLUMNS = (
    "oos_windows", "trials", "dsr", "pbo", "oos_total_return", "oos_sharpe_ratio",
    "oos_max_drawdown", "oos_win_rate", "oos_profit_factor", "oos_trades", "is_total_return",
    "is_sharpe_ratio", "is_max_drawdown",
)  # fmt: skip


def _finite(value):
    """Artifact cells: ±inf and NaN become None (the Prefect UI shows no table with Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def leader_rows(summaries: list[dict]) -> list[dict]:
    """One artifact row per series and strategy: its chained out-of-sample result, the latest
    in-sample choice beside it."""
    rows = []
    for s in summaries:
        for row in s["leaderboard"]:
            rows.append(
                {
                    "series": f"{s['exchange']} {s['market']} {s['symbol']} {s['timeframe']}",
                    "strategy": row["strategy"],
                    "params": row["params"],
                    **{k: _finite(row[k]) for k in LEADER_COLUMNS},
                    "report": s["report"],
                }
            )
    return rows


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def publish(summaries: list[dict], key: str) -> None:
    """The leaders as a table artifact, and a link artifact to each series' report."""
    rows = leader_rows(summaries) or [{"series": "none", "strategy": "no leaders"}]
    create_table_artifact(
        table=rows,
        key=key,
        description="Per series and strategy: the in-sample choices' chained out-of-sample "
        "result, DSR and PBO of the latest choice, its in-sample figures beside; metrics are "
        "fractions, null where vectorbt's value is inf/NaN",
    )
    for s in summaries:
        if s.get("report"):
            series = f"{s['exchange']} {s['market']} {s['symbol']} {s['timeframe']}"
            create_link_artifact(
                link=Path(s["report"]).as_uri(),
                link_text=f"backtest report {series}",
                key=f"backtest-report-{_slug(series)}",
                description=f"Chart, equity, leaderboard and grids of {series} (open the file)",
            )


@flow(name="backtest")
def backtest(
    exchange: str,
    market: str,
    symbol: str,
    timeframe: str,
    strategies: list[str] | None = None,
    grid: str | None = None,
    walk_forward: bool = False,
    metric: str | None = None,
    since: str | None = None,
    until: str | None = None,
    data_dir: str | None = None,
) -> dict:
    """Backtest one stored series: each strategy's grid in sample, its leaders out of sample.

    strategies: names (default all); grid: default or small; walk_forward: rolling windows
    instead of one split; metric: the in-sample metric that picks the parameters.
    """
    settings = load_settings(data_dir)
    request = BacktestRequest(
        ref=SeriesRef(exchange=exchange, market=market, symbol=symbol, timeframe=timeframe),
        strategies=tuple(strategies or ()),
        grid=grid,
        walk_forward=walk_forward,
        metric=metric,
        since=since,
        until=until,
    )
    check_request(request, settings)
    summary = backtest_series_task(settings, request)
    refresh_catalog_task(settings)
    publish([summary], key="backtest-leaders")
    if summary["failed"]:
        return Failed(message=f"strategies failed: {', '.join(summary['failed'])}", data=summary)
    return summary
