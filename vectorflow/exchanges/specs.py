"""Per-exchange facts as data: markets, kline endpoints, page sizes and weights."""

from __future__ import annotations

from dataclasses import dataclass

from vectorflow.errors import InvalidInput

MARKETS: tuple[str, ...] = ("spot", "linear")


@dataclass(frozen=True)
class KlineEndpoint:
    """One kline endpoint of one market, reached through a ccxt raw method."""

    method: str  # ccxt implicit API method, e.g. "fapiPublicGetKlines"
    page_limit: int  # rows per request that give the most candles per unit of weight
    bounded_window: bool  # True: send an end bounding the window to page_limit rows (Bybit)


@dataclass(frozen=True)
class ExchangeSpec:
    """What the pipeline needs to know about one exchange."""

    id: str
    row_format: str  # "binance" or "bybit": how kline responses are parsed
    klines: dict[str, KlineEndpoint]  # by market
    ccxt_options: dict

    def kline_endpoint(self, market: str) -> KlineEndpoint:
        """The kline endpoint of `market`; InvalidInput names an unknown market."""
        try:
            return self.klines[market]
        except KeyError:
            raise InvalidInput(
                f"unknown market {market!r} for {self.id}; expected one of {', '.join(MARKETS)}"
            ) from None


_LOAD_ONLY_SPOT_AND_LINEAR = {"fetchMarkets": {"types": ["spot", "linear"]}}

SPECS: dict[str, ExchangeSpec] = {
    "binance": ExchangeSpec(
        id="binance",
        row_format="binance",
        klines={
            # spot: weight 2 whatever the limit, max 1000
            "spot": KlineEndpoint("publicGetKlines", 1000, bounded_window=False),
            # USDⓈ-M: 1000 rows cost 5, 1500 cost 10 -> 1000 gives more candles per weight
            "linear": KlineEndpoint("fapiPublicGetKlines", 1000, bounded_window=False),
        },
        ccxt_options={**_LOAD_ONLY_SPOT_AND_LINEAR, "defaultType": "spot"},
    ),
    "bybit": ExchangeSpec(
        id="bybit",
        row_format="bybit",
        klines={
            "spot": KlineEndpoint("publicGetV5MarketKline", 1000, bounded_window=True),
            "linear": KlineEndpoint("publicGetV5MarketKline", 1000, bounded_window=True),
        },
        ccxt_options=dict(_LOAD_ONLY_SPOT_AND_LINEAR),
    ),
}


def exchange_spec(exchange: str) -> ExchangeSpec:
    """The spec of `exchange`; InvalidInput names an unknown exchange."""
    try:
        return SPECS[exchange]
    except KeyError:
        raise InvalidInput(
            f"unknown exchange {exchange!r}; expected one of {', '.join(SPECS)}"
        ) from None


def implied_market(symbol: str) -> str:
    """The market a unified symbol implies: `BTC/USDT` is spot, `BTC/USDT:USDT` linear."""
    base_quote, _, settle = symbol.partition(":")
    base, slash, quote = base_quote.partition("/")
    if not (slash and base and quote and base.isupper() and quote.isupper()):
        raise InvalidInput(
            f"symbol {symbol!r} is not a unified symbol such as BTC/USDT (spot)"
            " or BTC/USDT:USDT (linear perpetual)"
        )
    if not settle:
        return "spot"
    if settle != quote:
        raise InvalidInput(
            f"symbol {symbol!r}: only linear perpetuals settled in the quote currency are supported"
        )
    return "linear"
