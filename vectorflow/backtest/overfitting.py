"""How likely a grid's in-sample winner is to be luck: the Deflated Sharpe Ratio and the
Probability of Backtest Overfitting.

Deflated Sharpe Ratio (Bailey and López de Prado, "The Deflated Sharpe Ratio: Correcting for
Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management, 2014):
the probability that the chosen set's true Sharpe ratio is above zero, given that it is the best
of N trials. The benchmark is the Sharpe ratio the best of N skill-less trials would show,

    SR0 = sqrt(V[SR_n]) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e))),   g = 0.5772...

and DSR = Z((SR - SR0) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2)), with SR the
chosen set's per-bar Sharpe ratio, T its number of returns, skew and kurt (not excess) the
moments of its returns, V[SR_n] the variance of the N trials' per-bar Sharpe ratios.

Probability of Backtest Overfitting (Bailey, Borwein, López de Prado and Zhu, "The Probability
of Backtest Overfitting", Journal of Computational Finance, 2015), by combinatorially symmetric
cross-validation: the grid's bar returns (T x N) are cut into S blocks; each of the C(S, S/2)
ways to take half of the blocks in sample (the rest out of sample) picks the set with the best
in-sample statistic and notes its relative rank w among the N out-of-sample statistics
(rank / (N + 1), ties averaged); PBO is the share of splits with logit(w) <= 0, i.e. where the
in-sample best does no better than the out-of-sample median. The statistic is the selection
metric when it can be rebuilt from block sums (Sharpe ratio, Sortino ratio, total return), else
the Sharpe ratio. A half in which a set's returns never vary scores 0.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
from numba import njit

EULER_GAMMA = 0.5772156649015329
DEFAULT_BLOCKS = 16
STATISTICS = {"sharpe_ratio": 0, "sortino_ratio": 1, "total_return": 2}  # else the Sharpe ratio


def expected_max_sharpe(trials: int, variance: float) -> float:
    """SR0: the expected best Sharpe ratio of `trials` skill-less trials whose Sharpe ratios vary
    by `variance` (0 for one trial or no variance: nothing was selected)."""
    if trials < 2 or not variance > 0:
        return 0.0
    z = NormalDist().inv_cdf
    return math.sqrt(variance) * (
        (1 - EULER_GAMMA) * z(1 - 1 / trials) + EULER_GAMMA * z(1 - 1 / (trials * math.e))
    )


def deflated_sharpe_ratio(
    sharpe: float,
    *,
    trials: int,
    trials_variance: float,
    observations: int,
    skewness: float,
    kurtosis: float,
) -> float | None:
    """The DSR of a per-bar Sharpe ratio chosen among `trials` (None where it is undefined)."""
    sr0 = expected_max_sharpe(trials, trials_variance)
    spread = 1 - skewness * sharpe + (kurtosis - 1) / 4 * sharpe**2
    if observations < 2 or not (math.isfinite(sharpe) and math.isfinite(spread) and spread > 0):
        return None
    return NormalDist().cdf((sharpe - sr0) * math.sqrt(observations - 1) / math.sqrt(spread))


def return_moments(returns: np.ndarray) -> tuple[float, float]:
    """(skewness, kurtosis) of bar returns: the population moments (normal returns: 0, 3)."""
    r = np.asarray(returns, dtype=np.float64)
    dev = r - r.mean()
    m2 = float(np.mean(dev**2))
    if m2 == 0:
        return math.nan, math.nan
    return float(np.mean(dev**3)) / m2**1.5, float(np.mean(dev**4)) / m2**2


def trials_sharpe_variance(bar_sharpes: np.ndarray) -> float:
    """The variance (ddof 1) of the trials' finite per-bar Sharpe ratios (0 with fewer than 2)."""
    finite = np.asarray(bar_sharpes, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(np.var(finite, ddof=1)) if len(finite) > 1 else 0.0


def block_sums(returns: np.ndarray, blocks: int) -> np.ndarray:
    """Per-block sums (sets x blocks x 5) of a bars x sets return matrix, cut like the engine
    cuts it (the oldest bars % blocks bars left out): count, sum, sum of squares, sum of squared
    losses, growth factor."""
    from vectorflow.backtest.engine import block_index

    r = np.asarray(returns, dtype=np.float64)
    which = block_index(r.shape[0], blocks)
    out = np.zeros((r.shape[1], blocks, 5))
    for b in range(blocks):
        part = r[which == b]
        down = np.minimum(part, 0.0)
        out[:, b] = np.column_stack(
            [np.full(r.shape[1], len(part)), part.sum(0), (part**2).sum(0), (down**2).sum(0),
             np.prod(part + 1.0, axis=0)]
        )  # fmt: skip
    return out


@njit(cache=True)
def _statistic(n, total, squares, losses, growth, kind):
    """A half's statistic of one set from its block sums (0 where the returns never vary)."""
    mean = total / n
    if kind == 2:
        return growth - 1.0
    if kind == 1:
        spread = np.sqrt(losses / n)
    else:
        spread = np.sqrt(max(squares - n * mean * mean, 0.0) / (n - 1))
    return mean / spread if spread > 0 else 0.0


@njit(cache=True)
def _halves(sums, totals, split, kind, first, second):
    """Every set's statistic on the split's blocks (first) and on the other blocks (second)."""
    for j in range(sums.shape[0]):
        n, total, squares, losses, growth = 0.0, 0.0, 0.0, 0.0, 1.0
        for b in split:
            part = sums[j, b]
            n, total, squares = n + part[0], total + part[1], squares + part[2]
            losses, growth = losses + part[3], growth * part[4]
        t = totals[j]
        first[j] = _statistic(n, total, squares, losses, growth, kind)
        rest = t[4] / growth if growth != 0 else 0.0
        second[j] = _statistic(t[0] - n, t[1] - total, t[2] - squares, t[3] - losses, rest, kind)


@njit(cache=True)
def _logit_of_best(ins, outs):
    """logit of the relative out-of-sample rank (ties averaged) of the in-sample best."""
    best = int(np.argmax(ins))
    below, equal = 0, 0
    for j in range(outs.shape[0]):
        if outs[j] < outs[best]:
            below += 1
        elif outs[j] == outs[best]:
            equal += 1
    w = (below + (equal + 1) / 2.0) / (outs.shape[0] + 1)  # rank 1 = worst
    return np.log(w / (1 - w))


@njit(cache=True)
def cscv_logits_nb(sums, totals, splits, kind):
    """The logits of every split and of its complement (splits: the halves holding block 0)."""
    a, b = np.empty(sums.shape[0]), np.empty(sums.shape[0])
    logits = np.empty(2 * splits.shape[0])
    for c in range(splits.shape[0]):
        _halves(sums, totals, splits[c], kind, a, b)
        logits[2 * c] = _logit_of_best(a, b)  # these blocks in sample
        logits[2 * c + 1] = _logit_of_best(b, a)  # the other half in sample
    return logits


def probability_of_overfitting(sums: np.ndarray, metric: str = "sharpe_ratio") -> float | None:
    """PBO of a grid from its block sums (sets x S x 5); None for one set or fewer than 2 blocks
    with bars (S must be even)."""
    sums = np.asarray(sums, dtype=np.float64)
    n_sets, n_blocks = sums.shape[0], sums.shape[1]
    if n_sets < 2 or n_blocks < 2 or n_blocks % 2 or sums[:, :, 0].min() < 2:
        return None
    # every half of the blocks, as the halves holding block 0 and their complements
    splits = np.array([c for c in itertools.combinations(range(n_blocks), n_blocks // 2)
                       if c[0] == 0], dtype=np.int64)  # fmt: skip
    totals = np.concatenate([sums[:, :, :4].sum(axis=1), sums[:, :, 4:].prod(axis=1)], axis=1)
    logits = cscv_logits_nb(sums, totals, splits, STATISTICS.get(metric, 0))
    return float(np.mean(logits <= 0))


@dataclass(frozen=True)
class ChoiceStatistics:
    """How far to trust one grid's in-sample choice; None (with the reason) where undefined."""

    trials: int
    dsr: float | None
    pbo: float | None
    reasons: dict[str, str] = field(default_factory=dict)


def choice_statistics(
    bar_sharpes: np.ndarray,
    chosen: int,
    chosen_returns: np.ndarray,
    sums: np.ndarray,
    metric: str = "sharpe_ratio",
) -> ChoiceStatistics:
    """DSR of the chosen set (per-bar Sharpe ratios of every set, the chosen one's returns) and
    PBO of the grid (its block sums)."""
    sharpes = np.asarray(bar_sharpes, dtype=np.float64)
    trials, reasons = len(sharpes), {}
    skewness, kurtosis = return_moments(chosen_returns)
    dsr = deflated_sharpe_ratio(
        float(sharpes[chosen]), trials=trials, trials_variance=trials_sharpe_variance(sharpes),
        observations=len(chosen_returns), skewness=skewness, kurtosis=kurtosis,
    )  # fmt: skip
    if dsr is None:
        reasons["dsr"] = (
            "the chosen set's returns never vary (no trades)"
            if not math.isfinite(sharpes[chosen]) or math.isnan(kurtosis)
            else "undefined for these return moments"
        )
    pbo = probability_of_overfitting(sums, metric)
    if pbo is None:
        reasons["pbo"] = (
            "one parameter set: nothing was selected"
            if trials < 2
            else f"fewer than 2 bars in each of {sums.shape[1]} blocks"
        )
    return ChoiceStatistics(trials, dsr, pbo, reasons)
