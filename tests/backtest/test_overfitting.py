"""Deflated Sharpe Ratio and Probability of Backtest Overfitting against the papers' formulas
computed independently here, the DSR paper's worked example, and grids whose answer is known."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from vectorflow.backtest.overfitting import (
    block_sums,
    choice_statistics,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probability_of_overfitting,
    return_moments,
)


def test_dsr_of_the_papers_numerical_example():
    """Bailey and López de Prado (2014), "a numerical example": an annualised Sharpe ratio of
    2.5 over 5 years of daily returns, the best of 100 trials whose annualised Sharpe ratios
    vary by 0.5, skewness -3, kurtosis 10: SR0 is 1.7894 annualised, DSR 0.9004."""
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 * math.sqrt(250) == pytest.approx(1.7894, abs=1e-4)
    dsr = deflated_sharpe_ratio(2.5 / math.sqrt(250), trials=100, trials_variance=0.5 / 250,
                                observations=1250, skewness=-3, kurtosis=10)  # fmt: skip
    assert dsr == pytest.approx(0.9004, abs=1e-4)


def _dsr_by_hand(returns: np.ndarray, trial_sharpes: np.ndarray) -> float:
    """The paper's equations, written out with scipy: SR0 from the trials, then the DSR."""
    sr = returns.mean() / returns.std(ddof=1)
    n, var = len(trial_sharpes), trial_sharpes.var(ddof=1)
    sr0 = math.sqrt(var) * ((1 - np.euler_gamma) * stats.norm.ppf(1 - 1 / n)
                            + np.euler_gamma * stats.norm.ppf(1 - 1 / (n * math.e)))  # fmt: skip
    g3, g4 = stats.skew(returns), stats.kurtosis(returns, fisher=False)
    z = (sr - sr0) * math.sqrt(len(returns) - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    return float(stats.norm.cdf(z))


def test_dsr_of_a_chosen_set_equals_the_formula_by_hand():
    rng = np.random.default_rng(7)
    returns = rng.standard_t(4, size=(2000, 30)) * 0.01 + 0.0004
    sharpes = returns.mean(0) / returns.std(0, ddof=1)
    best = int(np.argmax(sharpes))
    got = choice_statistics(sharpes, best, returns[:, best], block_sums(returns, 16))
    assert got.trials == 30 and got.dsr == pytest.approx(_dsr_by_hand(returns[:, best], sharpes),
                                                         rel=1e-9)  # fmt: skip
    skew, kurt = return_moments(returns[:, best])
    assert (skew, kurt) == pytest.approx(
        (stats.skew(returns[:, best]), stats.kurtosis(returns[:, best], fisher=False)), rel=1e-9
    )
    # vectorbt's own DSR agrees (it takes the same inputs)
    from vectorbt.returns.metrics import deflated_sharpe_ratio as vbt_dsr

    theirs = vbt_dsr(est_sharpe=np.array([sharpes[best]]), var_sharpe=sharpes.var(ddof=1),
                     nb_trials=30, backtest_horizon=2000, skew=np.array([skew]),
                     kurtosis=np.array([kurt]))  # fmt: skip
    assert got.dsr == pytest.approx(float(theirs[0]), rel=1e-9)


def test_dsr_undefined_without_returns_to_judge():
    flat = np.zeros(100)
    got = choice_statistics(np.array([np.inf, 0.1]), 0, flat, np.zeros((2, 4, 5)))
    assert got.dsr is None and "no trades" in got.reasons["dsr"]
    assert expected_max_sharpe(1, 0.3) == 0.0  # one trial: nothing was selected


def _pbo_by_hand(returns: np.ndarray, s: int) -> float:
    """CSCV as the paper describes it, on the return matrix itself."""
    t, n = returns.shape
    size = t // s
    rows = returns[t - size * s :]
    blocks = [np.arange(b * size, (b + 1) * size) for b in range(s)]
    logits = []
    for half in itertools.combinations(range(s), s // 2):
        ins = rows[np.concatenate([blocks[b] for b in half])]
        outs = rows[np.concatenate([blocks[b] for b in range(s) if b not in half])]
        best = np.argmax(ins.mean(0) / ins.std(0, ddof=1))
        rank = stats.rankdata(outs.mean(0) / outs.std(0, ddof=1))[best]
        w = rank / (n + 1)
        logits.append(math.log(w / (1 - w)))
    return float(np.mean(np.array(logits) <= 0))


def test_pbo_equals_cscv_by_hand():
    rng = np.random.default_rng(11)
    returns = rng.normal(0.0002, 0.01, size=(803, 12))  # 803 % 8: the oldest 3 bars left out
    assert probability_of_overfitting(block_sums(returns, 8)) == _pbo_by_hand(returns, 8)


def test_pbo_of_noise_is_near_one_half_and_of_a_real_edge_near_zero():
    rng = np.random.default_rng(12)
    noise = [probability_of_overfitting(block_sums(rng.normal(0, 0.01, (1600, 40)), 16))
             for _ in range(6)]  # fmt: skip
    assert 0.4 < np.mean(noise) < 0.6 and all(0.2 < p < 0.8 for p in noise)
    edge = rng.normal(0, 0.01, (1600, 40))
    edge[:, 17] += 0.004  # one strategy with a real edge (Sharpe 0.4 per bar)
    assert probability_of_overfitting(block_sums(edge, 16)) < 0.02
    for metric in ("sortino_ratio", "total_return"):
        assert probability_of_overfitting(block_sums(edge, 16), metric) < 0.02


def test_pbo_undefined_for_one_set_or_empty_blocks():
    assert probability_of_overfitting(block_sums(np.zeros((100, 1)), 16)) is None
    assert probability_of_overfitting(block_sums(np.zeros((20, 5)), 16)) is None
    got = choice_statistics(np.array([0.1]), 0, np.linspace(-1, 1, 50), np.zeros((1, 16, 5)))
    assert got.pbo is None and "one parameter set" in got.reasons["pbo"]
