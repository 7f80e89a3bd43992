"""The `backtest` flow: every strategy's grid on one stored series, results to the lake.

`publish` (also the nightly's) puts the leaderboard in the UI three ways: a table, a markdown
page with the key figures per series (numbers rounded, parameters as `fast=10 slow=30`), and a
link per series to its HTML report, at the URL where the reports are served
(`flows.reporting.report_link`).
"""

from __future__ import annotations

import math
import re

from prefect import flow
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from flows.parameters import Exchange, Market, Timeframe, run_form
from flows.reporting import artifact_family, cell, markdown_table, report_link
from tasks.backtest import backtest_series_task
from tasks.candles import refresh_catalog_task
from vectorflow.backtest.run import BacktestRequest, check_request
from vectorflow.config import load_settings
from vectorflow.settings import Settings
from vectorflow.settings.backtest import SeriesRef

LEADER_COLUMNS = (
    "oos_total_return", "oos_sharpe_ratio", "oos_max_drawdown", "oos_win_rate",
    "oos_profit_factor", "oos_trades", "is_total_return", "is_sharpe_ratio", "is_max_drawdown",
)  # fmt: skip


def _finite(value):
    """Artifact cells: ±inf and NaN become None (the Prefect UI shows no table with Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def leader_rows(summaries: list[dict]) -> list[dict]:
    """One artifact row per series and strategy: its best out-of-sample run, in-sample beside."""
    rows = []
    for s in summaries:
        for row in s["leaderboard"]:
            rows.append(
                {
                    "series": f"{s['exchange']} {s['market']} {s['symbol']} {s['timeframe']}",
                    "strategy": row["strategy"],
                    "params": row["params"],
                    "window": row["window_index"],
                    **{k: _finite(row[k]) for k in LEADER_COLUMNS},
                    "report": s["report"],
                }
            )
    return rows


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _series(summary: dict) -> str:
    return f"{summary['exchange']} {summary['market']} {summary['symbol']} {summary['timeframe']}"


#: The key figures of a series' backtest shown above its board, when its summary has them.
KEY_FIGURES = ("split", "windows", "bars", "runs", "trades", "seconds")


def _headline_value(row: dict) -> float:
    """How a board's leading row compares across series: its out-of-sample selection metric."""
    value = row.get(f"oos_{row.get('selection_metric') or 'total_return'}")
    return value if isinstance(value, int | float) and math.isfinite(value) else -math.inf


def best_out_of_sample(summaries: list[dict]) -> str | None:
    """The best series' leading row in one line: series, strategy, parameters and its
    out-of-sample return, selection metric, drawdown and trades."""
    leads = [(s, s["leaderboard"][0]) for s in summaries if s.get("leaderboard")]
    if not leads:
        return None
    summary, row = max(leads, key=lambda lead: _headline_value(lead[1]))
    shown = ("total_return", row.get("selection_metric"), "max_drawdown", "trades")
    figures = ", ".join(f"{k} {cell(row[f'oos_{k}'])}" for k in dict.fromkeys(shown)
                        if k and f"oos_{k}" in row)  # fmt: skip
    return f"{_series(summary)} {row['strategy']} {cell(row.get('params'))}: {figures}"


def leaderboard_markdown(summaries: list[dict], settings: Settings) -> str:
    """The run's backtests as a page: the best result, then per series its key figures, a link
    to its report and its board (whatever columns `leader_rows` gives)."""
    strategies = sorted({r["strategy"] for s in summaries for r in s.get("leaderboard", [])})
    lines = [f"### Backtests: {len(summaries)} series, strategies {', '.join(strategies) or '—'}"]
    if best := best_out_of_sample(summaries):
        lines += ["", f"**Best out of sample:** {best}"]
    for s in summaries:
        figures = ", ".join(f"{k} {cell(s[k])}" for k in KEY_FIGURES if s.get(k) is not None)
        link = f" · [report]({report_link(s['report'], settings)})" if s.get("report") else ""
        board = [{k: v for k, v in row.items() if k not in ("series", "report")}
                 for row in leader_rows([s])]  # fmt: skip
        lines += ["", f"#### {_series(s)}: {figures}{link}", ""]
        lines.append(markdown_table(board) if board else "no strategy ran")
    return "\n".join(lines)


def publish(summaries: list[dict], job: str, settings: Settings) -> None:
    """The leaders as a table (`<job>-leaders`) and a markdown page (`<job>-leaderboard`), and a
    link to each series' report (`<job>-report-<series>`)."""
    rows = leader_rows(summaries) or [{"series": "none", "strategy": "no leaders"}]
    create_table_artifact(
        table=rows,
        key=f"{job}-leaders",
        description="Best out-of-sample run per series and strategy (in-sample beside it); "
        "metrics are fractions, null where vectorbt's value is inf/NaN",
    )
    create_markdown_artifact(
        markdown=leaderboard_markdown(summaries, settings),
        key=f"{job}-leaderboard",
        description="Backtests of the run: the best out-of-sample result, each series' board",
    )
    for s in summaries:
        if s.get("report"):
            create_link_artifact(
                link=report_link(s["report"], settings),
                link_text=f"backtest report {_series(s)}",
                key=f"{job}-report-{_slug(_series(s))}",
                description=f"Equity, drawdown and leaderboard of {_series(s)}",
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

    Args:
        exchange: Exchange of the stored series.
        market: Market of the series (spot, linear).
        symbol: Unified symbol, e.g. BTC/USDT or BTC/USDT:USDT.
        timeframe: Candle timeframe of the series.
        strategies: Strategies to run. Empty: [backtest] strategies, or every strategy.
        grid: Parameter grid of each strategy (default or small). Empty: [backtest] grid.
        walk_forward: Rolling in-sample/out-of-sample windows instead of one split.
        metric: In-sample metric that picks the parameters. Empty: [backtest] metric.
        since: First bar, UTC (e.g. 2024-01-01T00:00:00Z). Empty: the first stored bar.
        until: End, exclusive, UTC. Empty: the last stored bar.
        data_dir: For Python callers only (a deployment's runs use VECTORFLOW_DATA_DIR).
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
    check_request(request)
    summary = backtest_series_task(settings, request)
    refresh_catalog_task(settings)
    publish([summary], artifact_family("backtest"), settings)
    return summary


run_form(backtest, exchange=Exchange, market=Market, timeframe=Timeframe)
