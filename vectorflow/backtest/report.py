"""A series' backtest as one self-contained HTML page (plotly's script inline: it opens offline,
from anywhere, on its own).

Candlesticks with the chosen sets' entries and exits, each strategy's chained out-of-sample
equity against buy and hold and its drawdown, the board with DSR and PBO, in-sample heatmaps:
docs/playbooks-and-backtests.md#the-report.
"""

from __future__ import annotations

import html
import json
import os
import uuid
from pathlib import Path

import pandas as pd

from vectorflow.backtest.report_figures import (
    format_params,
    heatmap_figure,
    series_figure,
    strategy_colours,
)
from vectorflow.lake.files import safe_component
from vectorflow.timeframes import ms_to_iso

_COLUMNS = [  # (leaderboard key suffix, header, format)
    ("total_return", "return", "{:+.2%}"),
    ("sharpe_ratio", "Sharpe", "{:.2f}"),
    ("sortino_ratio", "Sortino", "{:.2f}"),
    ("max_drawdown", "max DD", "{:.2%}"),
    ("win_rate", "win rate", "{:.0%}"),
    ("profit_factor", "profit factor", "{:.2f}"),
    ("trades", "trades", "{:d}"),
    ("exposure", "exposure", "{:.0%}"),
]
_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px}
th{background:#f3f3f3}td.n{text-align:right}td.null{color:#999;text-align:center}
.is{color:#666}caption{text-align:left;font-weight:bold;padding:4px 0}
.chip{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.4em}
.maps{display:flex;flex-wrap:wrap;gap:12px}p.note{max-width:60em;color:#444}"""
_NOTES = (
    "Out of sample: in each window the whole grid runs on the in-sample bars and is ranked by "
    "{metric}; the set ranked first runs on the window's out-of-sample bars, and those parts "
    "are chained (each starting from the previous one's ending equity). Nothing is chosen "
    "after looking at out-of-sample results. DSR: the probability that the choice's true "
    "Sharpe ratio is above zero given the number of sets tried (trials; Bailey and López de "
    "Prado, 2014). PBO: the probability that the in-sample best does no better than the median out "
    "of sample, by combinatorially symmetric cross-validation of the in-sample grid (Bailey, "
    "Borwein, López de Prado and Zhu, 2015). Both are of the latest window's choice. Equity "
    "with fees and slippage; buy and hold without."
)


def report_path(reports_dir: Path, ref) -> Path:
    """Where the report of series `ref` goes."""
    parts = [ref.exchange, ref.market, ref.symbol, ref.timeframe]
    return reports_dir / f"backtest_{'_'.join(safe_component(p) for p in parts)}.html"


def _cell(value, fmt: str, reasons: dict, key: str, cls: str = "") -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        why = html.escape(reasons.get(key, "null"))
        return f'<td class="null {cls}" title="{why}">—</td>'
    return f'<td class="n {cls}">{html.escape(fmt.format(value))}</td>'


def _strategy_cells(row: dict, outcome, colour: str) -> list[str]:
    choices = "; ".join(
        f"window {i}: {format_params(p)}" for i, p in enumerate(outcome.choices if outcome else [])
    )
    reasons = json.loads(row.get("oos_null_reasons") or "{}")
    return [
        f'<td><span class="chip" style="background:{colour}"></span>'
        f"{html.escape(row['strategy'])}</td>",
        f'<td title="{html.escape(choices)}">{html.escape(format_params(row["params"]))}</td>',
        f"<td class='n'>{row['oos_windows']}</td><td class='n'>{row['trials']}</td>",
        _cell(row["dsr"], "{:.0%}", reasons, "dsr"),
        _cell(row["pbo"], "{:.0%}", reasons, "pbo"),
    ]


def _board_table(result, colours: dict[str, str]) -> str:
    head = "".join(f"<th>{h}</th>" for _, h, _ in _COLUMNS)
    lines = [
        "<table><caption>Leaderboard: each strategy's chained out-of-sample result (the latest "
        "choice's in-sample figures, grey, beside it)</caption>",
        "<tr><th>strategy</th><th>params (latest choice)</th><th>windows</th><th>trials</th>"
        '<th title="Deflated Sharpe Ratio">DSR</th>'
        f'<th title="Probability of Backtest Overfitting">PBO</th>{head}'
        f'<th class="is">in-sample</th>{head}</tr>',
    ]
    outcomes = {o.strategy: o for o in result.outcomes}
    for row in result.leaderboard():
        reasons = json.loads(row.get("oos_null_reasons") or "{}")
        is_reasons = json.loads(row.get("is_null_reasons") or "{}")
        cells = _strategy_cells(row, outcomes.get(row["strategy"]), colours[row["strategy"]])
        cells += [_cell(row[f"oos_{k}"], f, reasons, k) for k, _, f in _COLUMNS]
        cells.append('<td class="is"></td>')
        cells += [_cell(row[f"is_{k}"], f, is_reasons, k, "is") for k, _, f in _COLUMNS]
        lines.append(f"<tr>{''.join(cells)}</tr>")
    lines.append("</table>")
    for name, why in result.failed().items():
        lines.append(f"<p>{html.escape(name)}: <b>failed</b> ({html.escape(why)})</p>")
    for name, why in result.skipped().items():
        lines.append(f"<p>{html.escape(name)}: not run ({html.escape(why)})</p>")
    return "\n".join(lines)


def _heatmaps(result, colours: dict[str, str]) -> str:
    divs = []
    for outcome in result.outcomes:
        grid = outcome.grid
        title = f"{outcome.strategy}: in-sample {grid.metric if grid else ''}"
        if grid is not None and result.windows > 1:
            title += f" (window {grid.window_index})"
        fig = heatmap_figure(grid, colours[outcome.strategy], title)
        if fig is not None:
            divs.append(fig.to_html(full_html=False, include_plotlyjs=False,
                                    config={"displayModeBar": False}))  # fmt: skip
    if not divs:
        return ""
    return "<h2>In-sample grids</h2><div class='maps'>" + "".join(divs) + "</div>"


def _page(result) -> str:
    from plotly.offline import get_plotlyjs

    ref = result.ref
    title = f"Backtest {ref.exchange} {ref.market} {ref.symbol} {ref.timeframe}"
    facts = (
        f"run {ms_to_iso(result.run_at_ms)} · {result.bars} bars · {result.split} "
        f"({result.windows} window{'s' if result.windows != 1 else ''}) · signals "
        f"{result.signals_source} · batch {result.batch_id}"
    )
    colours = strategy_colours([o.strategy for o in result.outcomes])
    board = result.leaderboard()
    metric = board[0]["selection_metric"] if board else "the selection metric"
    chart = series_figure(result, colours).to_html(full_html=False, include_plotlyjs=False)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style><script>{get_plotlyjs()}</script></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(facts)}</p>"
        f"<p class='note'>{html.escape(_NOTES.format(metric=metric))}</p>"
        f"{chart}{_board_table(result, colours)}{_heatmaps(result, colours)}</body></html>"
    )


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(reports_dir: Path, result) -> Path:
    """Write (replace) the series' report page."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = report_path(reports_dir, result.ref)
    _write_text(path, _page(result))
    return path
