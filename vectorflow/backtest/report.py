"""A series' backtest as one HTML page a person opens directly (no server, no internet).

Equity and drawdown of each strategy's out-of-sample runs against buy and hold, and the
leaderboard: docs/playbooks-and-backtests.md#metrics.
"""

from __future__ import annotations

import html
import json
import os
import uuid
from pathlib import Path

import pandas as pd

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
.is{color:#666}caption{text-align:left;font-weight:bold;padding:4px 0}"""


def report_path(reports_dir: Path, ref) -> Path:
    """Where the report of series `ref` goes."""
    parts = [ref.exchange, ref.market, ref.symbol, ref.timeframe]
    return reports_dir / f"backtest_{'_'.join(safe_component(p) for p in parts)}.html"


def _figure(result) -> str:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.05
    )
    if result.benchmark is not None:
        fig.add_trace(go.Scatter(x=result.benchmark.index, y=result.benchmark, name="buy & hold",
                                 line=dict(color="#999", dash="dot")), row=1, col=1)  # fmt: skip
    for outcome in result.outcomes:
        equity = outcome.equity
        if equity is None:
            continue
        fig.add_trace(go.Scatter(x=equity.index, y=equity, name=outcome.strategy), row=1, col=1)
        drawdown = equity / equity.cummax() - 1.0  # of the plotted curve, for the eye only
        fig.add_trace(go.Scatter(x=drawdown.index, y=drawdown, name=outcome.strategy,
                                 showlegend=False), row=2, col=1)  # fmt: skip
    fig.update_yaxes(title_text="equity (x initial cash)", row=1, col=1)
    fig.update_yaxes(title_text="drawdown", tickformat=".0%", row=2, col=1)
    fig.update_layout(height=650, margin=dict(l=60, r=20, t=30, b=30))
    return fig.to_html(full_html=False, include_plotlyjs="directory")


def _cell(value, fmt: str, reasons: dict, key: str, cls: str = "") -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        why = html.escape(reasons.get(key, "null"))
        return f'<td class="null {cls}" title="{why}">—</td>'
    return f'<td class="n {cls}">{html.escape(fmt.format(value))}</td>'


def _board_table(result) -> str:
    head = "".join(f"<th>{h}</th>" for _, h, _ in _COLUMNS)
    lines = [
        "<table><caption>Leaderboard: the best out-of-sample run per strategy "
        "(in-sample, grey, beside it)</caption>",
        f"<tr><th>strategy</th><th>params</th><th>window</th>{head}"
        f'<th class="is">in-sample</th>{head}</tr>',
    ]
    for row in result.leaderboard():
        reasons = json.loads(row.get("oos_null_reasons") or "{}")
        is_reasons = json.loads(row.get("is_null_reasons") or "{}")
        cells = [f"<td>{html.escape(str(row[k]))}</td>" for k in ("strategy", "params")]
        cells.append(f"<td>{row['window_index']}</td>")
        cells += [_cell(row[f"oos_{k}"], f, reasons, k) for k, _, f in _COLUMNS]
        cells.append('<td class="is"></td>')
        cells += [_cell(row[f"is_{k}"], f, is_reasons, k, "is") for k, _, f in _COLUMNS]
        lines.append(f"<tr>{''.join(cells)}</tr>")
    lines.append("</table>")
    for name, why in result.skipped().items():
        lines.append(f"<p>{html.escape(name)}: not run ({html.escape(why)})</p>")
    return "\n".join(lines)


def _page(result) -> str:
    ref = result.ref
    title = f"Backtest {ref.exchange} {ref.market} {ref.symbol} {ref.timeframe}"
    facts = (
        f"run {ms_to_iso(result.run_at_ms)} · {result.bars} bars · {result.split} "
        f"({result.windows} window{'s' if result.windows != 1 else ''}) · signals "
        f"{result.signals_source} · batch {result.batch_id}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(facts)}</p><p>Equity: each strategy's in-sample best, run out of "
        f"sample{' and chained across windows' if result.windows > 1 else ''}, with fees and "
        f"slippage; buy and hold without.</p>{_figure(result)}{_board_table(result)}"
        "</body></html>"
    )


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(reports_dir: Path, result) -> Path:
    """Write (replace) the series' report page, and plotly's script beside it once."""
    from plotly.offline import get_plotlyjs

    reports_dir.mkdir(parents=True, exist_ok=True)
    script = reports_dir / "plotly.min.js"
    if not script.exists():
        _write_text(script, get_plotlyjs())
    path = report_path(reports_dir, result.ref)
    _write_text(path, _page(result))
    return path
