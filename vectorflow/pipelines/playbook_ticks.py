"""Price ticks of the markets playbooks are written for, from the ccxt markets the ingest cached.

A playbook run never loads markets for its own sake: an exchange whose markets were never cached
in this data dir (no ingest ran against it) is skipped, and its playbooks' ticks are inferred
from the stored prices (`vectorflow.playbooks.ticks`). Cached markets older than
`markets_cache_hours` are reloaded as the ingest would.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from vectorflow.errors import UnknownSymbol, VectorflowError
from vectorflow.exchanges.client import connect, market_of
from vectorflow.exchanges.specs import exchange_spec
from vectorflow.playbooks.ticks import market_label, tick_of_market
from vectorflow.settings import Settings
from vectorflow.units import Unit

log = logging.getLogger(__name__)


def market_ticks(units: Iterable[Unit], settings: Settings) -> dict[str, float]:
    """Tick size by market label (`binance spot BTC/USDT`) for the markets that have one."""
    units = list(units)
    ticks: dict[str, float] = {}
    for exchange in sorted({u.exchange for u in units}):
        cached = f"markets-{exchange_spec(exchange).id}-*.json"
        if not settings.cache_dir.is_dir() or not any(settings.cache_dir.glob(cached)):
            log.info("%s: no markets cached; ticks inferred from stored prices", exchange)
            continue
        try:
            client = connect(exchange, settings)
        except VectorflowError as exc:
            log.warning("%s: markets unavailable (%s); ticks inferred from prices", exchange, exc)
            continue
        for unit in (u for u in units if u.exchange == exchange):
            try:
                tick = tick_of_market(market_of(client, unit.symbol, unit.market))
            except UnknownSymbol:
                continue
            if tick is not None:
                ticks[market_label(unit)] = tick
    return ticks
