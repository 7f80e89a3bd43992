"""Exact price rows for profiles: the row size (set or defaulted) and integer row indices.

Prices are snapped to a decimal grid and divided as integers, so float noise never moves a
price to another row. The default row size and the grid: docs/signals.md#tpo-market-profile.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

import numpy as np

from vectorflow.errors import InvalidInput

DEFAULT_ROW_FRACTION = 0.001
DEFAULT_PRICE_DECIMALS = 8


def _decimals(value: Decimal) -> int:
    return max(0, -value.normalize().as_tuple().exponent)


def default_row_size(
    price: float, *, tick_size: float | None = None, fraction: float = DEFAULT_ROW_FRACTION
) -> Decimal:
    """The default row size for a price: 1-2-5 at or below price × fraction, a tick multiple."""
    mant, exp = nice_steps(np.array([price], dtype=np.float64), fraction)
    return _row_decimal(int(mant[0]), int(exp[0]), tick_size)


def nice_steps(prices: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(mantissa 1/2/5, power of ten) of the 1-2-5 number at or below |price| × fraction."""
    target = np.abs(prices) * fraction
    target = np.where(target > 0, target, 1e-8)
    exp = np.floor(np.log10(target) + 1e-12).astype(np.int64)
    mant = target / 10.0 ** exp.astype(np.float64) * (1 + 1e-12)
    return np.where(mant >= 5, 5, np.where(mant >= 2, 2, 1)), exp


def _row_decimal(mant: int, exp: int, tick_size: float | None) -> Decimal:
    row = Decimal(mant).scaleb(exp)
    if tick_size:
        tick = Decimal(repr(float(tick_size)))
        row = max(tick, (row / tick).to_integral_value(ROUND_CEILING) * tick)
    return row


def grid(row: Decimal, tick_size: float | None) -> tuple[int, int]:
    """(row size in grid units, grid decimals) for a row size."""
    base = _decimals(Decimal(repr(float(tick_size)))) if tick_size else DEFAULT_PRICE_DECIMALS
    decimals = max(base, _decimals(row))
    return int(row.scaleb(decimals)), decimals


def row_grids(
    prices: np.ndarray, row_size: float | None, tick_size: float | None, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """(row size in grid units, grid decimals) for each reference price."""
    if row_size is not None:
        units, dec = grid(Decimal(repr(float(row_size))), tick_size)
        return np.full(len(prices), units), np.full(len(prices), dec)
    mant, exp = nice_steps(prices, fraction)
    grids = {
        key: grid(_row_decimal(key[0], key[1], tick_size), tick_size)
        for key in set(zip(mant.tolist(), exp.tolist(), strict=True))
    }
    pairs = [grids[key] for key in zip(mant.tolist(), exp.tolist(), strict=True)]
    return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)


def to_rows(prices: np.ndarray, scale: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Row index of each price: snapped to the grid (`scale` = 10^d), floor-divided by units."""
    snapped = np.rint(prices * scale)
    if len(snapped) and np.nanmax(np.abs(snapped)) >= 2.0**53:
        raise InvalidInput("TPO prices exceed the exact grid; set a larger tick or row size")
    return np.floor_divide(snapped.astype(np.int64), units)
