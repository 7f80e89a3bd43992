"""Grade past playbooks against the candles that followed them.

Walking the bars after `as_of` (at most `horizon` of them):

- Entry: the first bar whose range touches the entry zone; the fill is the zone price nearest
  the bar's open (`clip(open, zone_low, zone_high)`: the first zone price a path from the open
  reaches). Never touched within the horizon: `not_triggered` (no R).
- Within a bar the order of high and low is unknown, so the conservative assumption holds: on
  the entry bar only the stop counts (a target there may have printed before the fill); on any
  later bar that reaches both the stop and a target, the stop was hit first.
- Targets close their share of the position at the target price; the stop closes the rest at
  the stop (or at the open when the bar gapped through it). At the horizon the rest is closed
  at the last bar's close.
- Outcome: `target_k` for the highest target hit (whatever the rest did), `stopped` when the
  stop came before any target, `expired` when neither happened within the horizon.
- R = Σ share_k·(target_k − fill)/risk + rest·(exit − fill)/risk (signs mirrored for shorts),
  risk = |fill − stop|. MFE / MAE: the largest favourable / adverse move from the fill as a
  fraction of it (entry bar: adverse only), up to the exit.

A playbook whose horizon has not fully closed yet and that is still open is not graded (None).

A `no_trade` is graded once its horizon closed (`grade_no_trade`): the move over the horizon
(close at its end / close at as_of − 1), the largest rise (`mfe`) and fall (`mae`) from the close
at as_of, and what a trade would have needed: a long and a short entered at that close with a
1-ATR stop and a 2-ATR target, walked as above. `missed_r` is the better one's R (0 when neither
filled); staying out `avoided_loss` when that is not above 0 (neither trade would have won).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vectorflow.playbooks.bars import Bars

OUTCOMES = (
    "not_triggered", "stopped", "target_1", "target_2", "target_3", "expired", "no_trade",
)  # fmt: skip
NO_TRADE_STOP_ATR = 1.0
NO_TRADE_TARGET_ATR = 2.0


@dataclass(frozen=True)
class Plan:
    """The levels of a directional playbook."""

    side: str  # long | short
    entry_low: float
    entry_high: float
    stop: float
    targets: tuple[tuple[float, float], ...]  # (price, share)


@dataclass(frozen=True)
class Outcome:
    """How a playbook did."""

    outcome: str
    triggered: bool
    bars_to_outcome: int
    entry_time: int | None = None
    entry_price: float | None = None
    exit_time: int | None = None
    exit_price: float | None = None
    r_multiple: float | None = None
    mfe: float | None = None
    mae: float | None = None
    move: float | None = None
    missed_r: float | None = None
    avoided_loss: bool | None = None


class _Trade:
    """An open position being walked bar by bar."""

    def __init__(self, plan: Plan, fill: float) -> None:
        self.plan, self.fill = plan, fill
        self.sign = 1.0 if plan.side == "long" else -1.0
        self.risk = abs(fill - plan.stop)
        self.hit = 0  # targets reached
        self.rest = 1.0  # share still open
        self.r = 0.0
        self.best = 0.0  # favourable excursion, price units
        self.worst = 0.0  # adverse excursion, price units

    def _r(self, price: float) -> float:
        return self.sign * (price - self.fill) / self.risk if self.risk > 0 else 0.0

    def excursions(self, high: float, low: float, *, favourable: bool) -> None:
        up, down = high - self.fill, self.fill - low
        fav, adv = (up, down) if self.sign > 0 else (down, up)
        if favourable:
            self.best = max(self.best, fav)
        self.worst = max(self.worst, adv)

    def stop_hit(self, high: float, low: float) -> bool:
        return low <= self.plan.stop if self.sign > 0 else high >= self.plan.stop

    def close_rest(self, price: float) -> None:
        self.r += self.rest * self._r(price)
        self.rest = 0.0

    def take_targets(self, high: float, low: float) -> None:
        for price, share in self.plan.targets[self.hit :]:
            if (high >= price) if self.sign > 0 else (low <= price):
                self.hit += 1
                self.r += share * self._r(price)
                self.rest = max(0.0, self.rest - share)
            else:
                break

    @property
    def done(self) -> bool:
        return self.hit == len(self.plan.targets)

    def outcome(self, label: str, bars: int, entry: tuple[int, float], exit_: tuple[int, float]):
        name = f"target_{self.hit}" if self.hit else label
        return Outcome(
            outcome=name,
            triggered=True,
            bars_to_outcome=bars,
            entry_time=entry[0],
            entry_price=self.fill,
            exit_time=exit_[0],
            exit_price=exit_[1],
            r_multiple=round(self.r, 6),
            mfe=self.best / self.fill,
            mae=self.worst / self.fill,
        )


def grade(
    plan: Plan, bars: Bars | pd.DataFrame, horizon: int, *, horizon_closed: bool
) -> Outcome | None:
    """The outcome of `plan` over `bars` (the candles after as_of, oldest first), or None if open.

    `horizon_closed`: the candles reach the end of the horizon (the last bar of it has closed).
    """
    bars = (bars if isinstance(bars, Bars) else Bars.of(bars)).cut(0, horizon)
    times, o, h, lo, c = bars.open_time, bars.open, bars.high, bars.low, bars.close
    trade, entry = None, None
    for i in range(len(times)):
        if trade is None:
            if lo[i] > plan.entry_high or h[i] < plan.entry_low:
                continue
            trade = _Trade(plan, float(np.clip(o[i], plan.entry_low, plan.entry_high)))
            entry = (int(times[i]), trade.fill)
            trade.excursions(h[i], lo[i], favourable=False)
            if trade.stop_hit(h[i], lo[i]):
                trade.close_rest(plan.stop)
                return trade.outcome("stopped", i + 1, entry, (int(times[i]), plan.stop))
            continue
        trade.excursions(h[i], lo[i], favourable=True)
        if trade.stop_hit(h[i], lo[i]):
            gapped = o[i] < plan.stop if trade.sign > 0 else o[i] > plan.stop
            price = float(o[i]) if gapped else plan.stop
            trade.close_rest(price)
            return trade.outcome("stopped", i + 1, entry, (int(times[i]), price))
        trade.take_targets(h[i], lo[i])
        if trade.done:
            return trade.outcome("target", i + 1, entry, (int(times[i]), plan.targets[-1][0]))
    if not horizon_closed:
        return None
    if trade is None:
        return Outcome(outcome="not_triggered", triggered=False, bars_to_outcome=horizon)
    trade.close_rest(float(c[-1]))
    return trade.outcome("expired", horizon, entry, (int(times[-1]), float(c[-1])))


def _would_be(side: str, close: float, atr: float) -> Plan:
    sign = 1.0 if side == "long" else -1.0
    stop = close - sign * NO_TRADE_STOP_ATR * atr
    return Plan(side, close, close, stop, ((close + sign * NO_TRADE_TARGET_ATR * atr, 1.0),))


def grade_no_trade(
    close: float, atr: float, bars: Bars | pd.DataFrame, horizon: int, *, horizon_closed: bool
) -> Outcome | None:
    """The outcome of staying out at `close` over `bars` (None until the horizon closed)."""
    bars = (bars if isinstance(bars, Bars) else Bars.of(bars)).cut(0, horizon)
    if not horizon_closed or not len(bars):
        return None
    trades = [grade(_would_be(s, close, atr), bars, horizon, horizon_closed=True)
              for s in ("long", "short")]
    results = [t.r_multiple for t in trades if t.triggered and t.r_multiple is not None]
    missed = max(results) if results else 0.0
    last = float(bars.close[-1])
    return Outcome(
        outcome="no_trade",
        triggered=False,
        bars_to_outcome=horizon,
        exit_time=int(bars.open_time[-1]),
        exit_price=last,
        mfe=float(bars.high.max()) / close - 1,
        mae=1 - float(bars.low.min()) / close,
        move=last / close - 1,
        missed_r=missed,
        avoided_loss=missed <= 0,
    )


def brier_success(bias: str | None, triggered: bool, r_multiple, avoided_loss) -> bool | None:
    """What `confidence` forecasts, as it turned out: a triggered trade won (R > 0), or staying
    out avoided a loss; None for a plan that never triggered (nothing to score)."""
    if bias == "no_trade":
        return None if avoided_loss is None else bool(avoided_loss)
    if not triggered or r_multiple is None:
        return None
    return r_multiple > 0
