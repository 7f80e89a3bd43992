"""Per-exchange facts as data: markets, kline endpoints, page sizes, rate budgets and weights."""

from __future__ import annotations

from dataclasses import dataclass, field

from vectorflow.errors import InvalidInput
from vectorflow.resilience.target import Budget
from vectorflow.settings.series import MARKETS


@dataclass(frozen=True)
class KlineEndpoint:
    """One kline endpoint of one market, reached through a ccxt raw method."""

    method: str  # ccxt implicit API method, e.g. "fapiPublicGetKlines"
    page_limit: int  # rows per request that give the most candles per unit of weight
    bounded_window: bool  # True: send an end bounding the window to page_limit rows (Bybit)


@dataclass(frozen=True)
class Charge:
    """What one request costs against one budget: a weight, or a weight by the `limit` sent."""

    budget: str
    weight: int = 1
    by_limit: tuple[tuple[int, int], ...] = ()  # ((largest limit, weight), ...) ascending
    default_limit: int = 500  # the limit the exchange assumes when none is sent

    def weight_for(self, params: dict) -> int:
        """The weight of a request with these parameters."""
        if not self.by_limit:
            return self.weight
        limit = int(params.get("limit") or self.default_limit)
        for largest, weight in self.by_limit:
            if limit <= largest:
                return weight
        return self.by_limit[-1][1]


@dataclass(frozen=True)
class Endpoint:
    """A ccxt raw method as the resilience layer sees it: its breaker kind and its charges."""

    kind: str  # the circuit breaker's task kind, e.g. "fetch_candles"
    charges: tuple[Charge, ...]


@dataclass(frozen=True)
class ExchangeSpec:
    """What the pipeline needs to know about one exchange."""

    id: str
    row_format: str  # "binance" or "bybit": how kline responses are parsed
    klines: dict[str, KlineEndpoint]  # by market
    ccxt_options: dict
    budgets: tuple[Budget, ...] = ()
    endpoints: dict[str, Endpoint] = field(default_factory=dict)  # by ccxt method
    fallback_budgets: tuple[tuple[str, str], ...] = ()  # (method prefix, budget) for the rest
    min_ban_seconds: float = 0.0  # an IP ban lasts at least this long (Retry-After may say more)

    def endpoint(self, method: str) -> Endpoint:
        """The kind and charges of `method`; a method missing from the table costs 1."""
        found = self.endpoints.get(method)
        if found is not None:
            return found
        budget = next((b for prefix, b in self.fallback_budgets if method.startswith(prefix)), None)
        return Endpoint(method, (Charge(budget),) if budget else ())

    def charges(self, method: str, params: dict) -> list[tuple[Budget, int]]:
        """What a call of `method` with `params` costs: (budget, weight) per budget it counts on."""
        budgets = {b.name: b for b in self.budgets}
        return [
            (budgets[c.budget], c.weight_for(params))
            for c in self.endpoint(method).charges
            if c.budget in budgets
        ]

    def kline_endpoint(self, market: str) -> KlineEndpoint:
        """The kline endpoint of `market`; InvalidInput names an unknown market."""
        try:
            return self.klines[market]
        except KeyError:
            raise InvalidInput(
                f"unknown market {market!r} for {self.id}; expected one of {', '.join(MARKETS)}"
            ) from None


_LOAD_ONLY_SPOT_AND_LINEAR = {"fetchMarkets": {"types": ["spot", "linear"]}}

_SPOT, _USDM = "binance_spot", "binance_usdm"
_OI_HIST, _FUNDING = "binance_open_interest_hist", "binance_funding"
# Binance weights (docs/exchanges.md#limits); `load_markets` is ccxt's markets load: both
# exchangeInfos
BINANCE_ENDPOINTS = {
    "publicGetKlines": Endpoint("fetch_candles", (Charge(_SPOT, 2),)),
    "fapiPublicGetKlines": Endpoint(
        "fetch_candles", (Charge(_USDM, by_limit=((99, 1), (499, 2), (1000, 5), (1500, 10))),)
    ),
    "publicGetDepth": Endpoint(
        "fetch_orderbook",
        (
            Charge(
                _SPOT, by_limit=((100, 5), (500, 25), (1000, 50), (5000, 250)), default_limit=100
            ),
        ),
    ),
    "fapiPublicGetDepth": Endpoint(
        "fetch_orderbook", (Charge(_USDM, by_limit=((50, 2), (100, 5), (500, 10), (1000, 20))),)
    ),
    "fapiPublicGetOpenInterest": Endpoint("fetch_open_interest", (Charge(_USDM, 1),)),
    "fapiDataGetOpenInterestHist": Endpoint("fetch_open_interest", (Charge(_OI_HIST, 1),)),
    "fapiPublicGetFundingRate": Endpoint("fetch_funding", (Charge(_FUNDING, 1),)),
    "fapiPublicGetFundingInfo": Endpoint("fetch_funding", (Charge(_FUNDING, 1),)),
    "publicGetExchangeInfo": Endpoint("load_markets", (Charge(_SPOT, 20),)),
    "fapiPublicGetExchangeInfo": Endpoint("load_markets", (Charge(_USDM, 1),)),
    "publicGetTime": Endpoint("server_time", (Charge(_SPOT, 1),)),
    "fapiPublicGetTime": Endpoint("server_time", (Charge(_USDM, 1),)),
    "load_markets": Endpoint("load_markets", (Charge(_SPOT, 20), Charge(_USDM, 1))),
}
BINANCE_BUDGETS = (
    Budget(_SPOT, 6000, 60, ("/api/",), "X-MBX-USED-WEIGHT-1M"),
    Budget(_USDM, 2400, 60, ("/fapi/",), "X-MBX-USED-WEIGHT-1M"),
    Budget(_OI_HIST, 1000, 300, ("/futures/data/",)),  # requests, weight 0 on the USDⓈ-M budget
    Budget(_FUNDING, 500, 300, ("/fapi/v1/fundingRate", "/fapi/v1/fundingInfo")),
)
# Bybit: 600 requests per 5 s per IP, whatever the endpoint; no usage header on public endpoints
_BYBIT = "bybit"
BYBIT_ENDPOINTS = {
    "publicGetV5MarketKline": Endpoint("fetch_candles", (Charge(_BYBIT),)),
    "publicGetV5MarketOrderbook": Endpoint("fetch_orderbook", (Charge(_BYBIT),)),
    "publicGetV5MarketOpenInterest": Endpoint("fetch_open_interest", (Charge(_BYBIT),)),
    "publicGetV5MarketFundingHistory": Endpoint("fetch_funding", (Charge(_BYBIT),)),
    "publicGetV5MarketInstrumentsInfo": Endpoint("load_markets", (Charge(_BYBIT),)),
    "publicGetV5MarketTime": Endpoint("server_time", (Charge(_BYBIT),)),
    "load_markets": Endpoint("load_markets", (Charge(_BYBIT, 3),)),  # spot + 2 linear pages
}
BYBIT_BUDGETS = (Budget(_BYBIT, 600, 5, ("/v5/",)),)

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
        budgets=BINANCE_BUDGETS,
        endpoints=BINANCE_ENDPOINTS,
        fallback_budgets=(("fapiData", _OI_HIST), ("fapi", _USDM), ("", _SPOT)),
        min_ban_seconds=120,  # 418: "from 2 minutes up to 3 days"
    ),
    "bybit": ExchangeSpec(
        id="bybit",
        row_format="bybit",
        klines={
            "spot": KlineEndpoint("publicGetV5MarketKline", 1000, bounded_window=True),
            "linear": KlineEndpoint("publicGetV5MarketKline", 1000, bounded_window=True),
        },
        ccxt_options=dict(_LOAD_ONLY_SPOT_AND_LINEAR),
        budgets=BYBIT_BUDGETS,
        endpoints=BYBIT_ENDPOINTS,
        fallback_budgets=(("", _BYBIT),),
        min_ban_seconds=600,  # 403 "access too frequent": stop for at least 10 minutes
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


def all_budgets() -> dict[str, Budget]:
    """Every exchange's budgets by name."""
    return {b.name: b for spec in SPECS.values() for b in spec.budgets}


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


# ------------------------------------------------------ order books, open interest, funding


@dataclass(frozen=True)
class DepthEndpoint:
    """An order book endpoint of one market."""

    method: str
    max_levels: int
    allowed: tuple[int, ...] = ()  # the only limits accepted (Binance USDⓈ-M); () any 1..max
    time_field: str | None = None  # the exchange's snapshot time; None: local receive time


@dataclass(frozen=True)
class HistoryEndpoint:
    """A time-series endpoint of perpetuals (open interest history, funding history)."""

    method: str
    page_limit: int
    newest_first: bool  # rows come newest first (Bybit): paged backwards
    periods: dict[str, str] = field(default_factory=dict)  # our period -> the exchange's name
    horizon_days: float | None = None  # only this far back is served (Binance: 30 days)
    cursor: bool = False  # pages follow `nextPageCursor`


@dataclass(frozen=True)
class MarketDataSpec:
    """Where one exchange serves order books, open interest and funding."""

    depth: dict[str, DepthEndpoint]  # by market
    open_interest: HistoryEndpoint
    funding: HistoryEndpoint
    funding_info: str | None  # method listing non-default funding intervals (else: market info)


_OI_PERIODS = {p: p for p in ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")}
MARKET_DATA: dict[str, MarketDataSpec] = {
    "binance": MarketDataSpec(
        depth={
            "spot": DepthEndpoint("publicGetDepth", 5000),
            "linear": DepthEndpoint(
                "fapiPublicGetDepth", 1000, (5, 10, 20, 50, 100, 500, 1000), time_field="T"
            ),
        },
        open_interest=HistoryEndpoint(
            "fapiDataGetOpenInterestHist", 500, False, _OI_PERIODS, horizon_days=30
        ),
        funding=HistoryEndpoint("fapiPublicGetFundingRate", 1000, False),
        funding_info="fapiPublicGetFundingInfo",
    ),
    "bybit": MarketDataSpec(
        depth={
            "spot": DepthEndpoint("publicGetV5MarketOrderbook", 1000, time_field="ts"),
            "linear": DepthEndpoint("publicGetV5MarketOrderbook", 1000, time_field="ts"),
        },
        open_interest=HistoryEndpoint(
            "publicGetV5MarketOpenInterest",
            200,
            True,
            {"5m": "5min", "15m": "15min", "30m": "30min", "1h": "1h", "4h": "4h", "1d": "1d"},
            cursor=True,
        ),
        funding=HistoryEndpoint("publicGetV5MarketFundingHistory", 200, True),
        funding_info=None,  # instruments-info's fundingInterval, in ccxt's market info
    ),
}


def market_data_spec(exchange: str) -> MarketDataSpec:
    """Order book, open interest and funding endpoints of `exchange`."""
    exchange_spec(exchange)  # InvalidInput for an unknown exchange
    return MARKET_DATA[exchange]
