"""Listed markets of the simulator and the exchangeInfo / instruments-info payloads describing them.

Entry shapes follow data/examples/binance_usdm_exchange_info.json and the
bybit_instruments_info_*.json examples; spot entries follow Binance's documented exchangeInfo.
"""

from __future__ import annotations

from dataclasses import dataclass, field

VENUES: tuple[tuple[str, str], ...] = (
    ("binance", "spot"),
    ("binance", "linear"),
    ("bybit", "spot"),
    ("bybit", "linear"),
)
REFERENCE = ("binance", "linear")  # every other venue is derived from this one


@dataclass(frozen=True)
class Grid:
    """Price tick and lot step of one market, as decimal strings."""

    tick: str
    step: str

    @property
    def price_decimals(self) -> int:
        """Decimals of the tick size."""
        return _decimals(self.tick)

    @property
    def qty_decimals(self) -> int:
        """Decimals of the lot step."""
        return _decimals(self.step)


@dataclass(frozen=True)
class SymbolSpec:
    """One base asset quoted in USDT, with its price level and per-venue grids."""

    base: str
    level: float  # price at the anchor time (BTC: the real bundled price)
    vol_mult: float
    notional: float  # reference-venue quote volume relative to BTC
    recent: bool  # listed ~10 days before the simulator's start instead of ~400
    grids: dict[tuple[str, str], Grid] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Exchange id, e.g. BTCUSDT (the same on both exchanges)."""
        return f"{self.base}USDT"


def _grids(bs: tuple[str, str], bl: tuple[str, str], ys=None, yl=None) -> dict:
    out = {("binance", "spot"): Grid(*bs), ("binance", "linear"): Grid(*bl)}
    if ys:
        out[("bybit", "spot")] = Grid(*ys)
    if yl:
        out[("bybit", "linear")] = Grid(*yl)
    return out


SYMBOLS: dict[str, SymbolSpec] = {
    s.id: s
    for s in (
        SymbolSpec(
            "BTC",
            0.0,
            1.0,
            1.0,
            False,
            _grids(("0.01", "0.00001"), ("0.1", "0.001"), ("0.1", "0.000001"), ("0.1", "0.001")),
        ),
        SymbolSpec(
            "ETH",
            1500.0,
            1.2,
            0.5,
            False,
            _grids(("0.01", "0.0001"), ("0.01", "0.001"), ("0.01", "0.00001"), ("0.01", "0.01")),
        ),
        SymbolSpec(
            "SOL",
            20.0,
            1.6,
            0.12,
            False,
            _grids(("0.01", "0.001"), ("0.01", "1"), ("0.01", "0.001"), ("0.01", "0.1")),
        ),
        SymbolSpec(
            "XRP",
            0.4,
            1.4,
            0.08,
            False,
            _grids(("0.0001", "1"), ("0.0001", "0.1"), ("0.0001", "0.01"), ("0.0001", "1")),
        ),
        SymbolSpec("BNB", 300.0, 1.0, 0.04, False, _grids(("0.01", "0.001"), ("0.01", "0.01"))),
        SymbolSpec(
            "NEW",
            1.0,
            2.5,
            0.05,
            True,
            _grids(("0.0001", "0.1"), ("0.0001", "1"), ("0.0001", "0.01"), ("0.0001", "1")),
        ),
    )
}


def _decimals(text: str) -> int:
    return len(text.split(".")[1].rstrip("0")) if "." in text else 0


def _rate(kind: str, interval: str, num: int, limit: int) -> dict:
    return {"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit}


def _fixed(text: str, places: int = 8) -> str:
    return f"{float(text):.{places}f}"


def listed_ids(exchange: str, market: str) -> list[str]:
    """Exchange ids listed on one venue, sorted."""
    return sorted(s.id for s in SYMBOLS.values() if (exchange, market) in s.grids)


def unified(spec: SymbolSpec, market: str) -> str:
    """ccxt's unified symbol: BTC/USDT for spot, BTC/USDT:USDT for the linear perpetual."""
    return f"{spec.base}/USDT" + (":USDT" if market == "linear" else "")


# ---------------------------------------------------------------- Binance spot /api/v3/exchangeInfo

_SPOT_ORDER_TYPES = [
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]


def binance_spot_entry(spec: SymbolSpec) -> dict:
    """One symbol of GET /api/v3/exchangeInfo."""
    grid = spec.grids[("binance", "spot")]
    return {
        "symbol": spec.id,
        "status": "TRADING",
        "baseAsset": spec.base,
        "baseAssetPrecision": 8,
        "quoteAsset": "USDT",
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": list(_SPOT_ORDER_TYPES),
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "pegInstructionsAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": spec.base != "NEW",
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": _fixed(grid.tick),
                "maxPrice": "1000000.00000000",
                "tickSize": _fixed(grid.tick),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": _fixed(grid.step),
                "maxQty": "9000000.00000000",
                "stepSize": _fixed(grid.step),
            },
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": "100000.00000000",
                "stepSize": "0.00000000",
            },
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": 10,
                "maxTrailingAboveDelta": 2000,
                "minTrailingBelowDelta": 10,
                "maxTrailingBelowDelta": 2000,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": "5",
                "bidMultiplierDown": "0.2",
                "askMultiplierUp": "5",
                "askMultiplierDown": "0.2",
                "avgPriceMins": 5,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": "5.00000000",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN", "TRD_GRP_004", "TRD_GRP_005", "TRD_GRP_006"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": [
            "EXPIRE_TAKER",
            "EXPIRE_MAKER",
            "EXPIRE_BOTH",
            "DECREMENT",
        ],
    }


def binance_spot_info(server_time: int, ids: list[str]) -> dict:
    """Body of GET /api/v3/exchangeInfo for the given symbol ids."""
    return {
        "timezone": "UTC",
        "serverTime": server_time,
        "rateLimits": [
            _rate("REQUEST_WEIGHT", "MINUTE", 1, 6000),
            _rate("ORDERS", "SECOND", 10, 100),
            _rate("ORDERS", "DAY", 1, 200000),
            _rate("RAW_REQUESTS", "MINUTE", 5, 61000),
        ],
        "exchangeFilters": [],
        "symbols": [binance_spot_entry(SYMBOLS[i]) for i in ids],
    }


# ---------------------------------------------------------------- Binance USDⓈ-M exchangeInfo


def binance_usdm_entry(spec: SymbolSpec, onboard_ms: int) -> dict:
    """One symbol of GET /fapi/v1/exchangeInfo (as examples/binance_usdm_exchange_info.json)."""
    grid = spec.grids[("binance", "linear")]
    price_precision = 2 if spec.base == "BTC" else grid.price_decimals  # Binance's own quirk
    return {
        "symbol": spec.id,
        "pair": spec.id,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": onboard_ms,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base,
        "quoteAsset": "USDT",
        "marginAsset": "USDT",
        "pricePrecision": price_precision,
        "quantityPrecision": grid.qty_decimals,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": ["Layer-1"] if spec.base != "NEW" else [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": grid.tick,
                "maxPrice": "4529764",
                "tickSize": grid.tick,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": grid.step,
                "maxQty": "1000",
                "stepSize": grid.step,
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": grid.step,
                "maxQty": "120",
                "stepSize": grid.step,
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": "5"},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        "permissionSets": ["GRID", "COPY"],
    }


def binance_usdm_info(server_time: int, listing: dict[str, int]) -> dict:
    """Body of GET /fapi/v1/exchangeInfo."""
    ids = listed_ids("binance", "linear")
    return {
        "timezone": "UTC",
        "serverTime": server_time,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            _rate("REQUEST_WEIGHT", "MINUTE", 1, 2400),
            _rate("ORDERS", "MINUTE", 1, 1200),
            _rate("ORDERS", "SECOND", 10, 300),
        ],
        "exchangeFilters": [],
        "assets": [
            {"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"},
            {"asset": "BTC", "marginAvailable": True, "autoAssetExchange": "-0.10"},
        ],
        "symbols": [binance_usdm_entry(SYMBOLS[i], listing[i]) for i in ids],
    }


# ---------------------------------------------------------------- Bybit /v5/market/instruments-info


def bybit_spot_entry(spec: SymbolSpec, symbol_id: int) -> dict:
    """One spot instrument (shape of examples/bybit_instruments_info_spot_BTCUSDT.json)."""
    grid = spec.grids[("bybit", "spot")]
    return {
        "symbolId": symbol_id,
        "symbol": spec.id,
        "baseCoin": spec.base,
        "quoteCoin": "USDT",
        "innovation": "1" if spec.recent else "0",
        "status": "Trading",
        "marginTrading": "none" if spec.recent else "utaOnly",
        "stTag": "0",
        "lotSizeFilter": {
            "basePrecision": grid.step,
            "quotePrecision": "0.0000001",
            "minOrderQty": grid.step,
            "maxOrderQty": "1000000",
            "minOrderAmt": "5",
            "maxOrderAmt": "8000000",
            "maxLimitOrderQty": "1000000",
            "maxMarketOrderQty": "500000",
            "postOnlyMaxLimitOrderSize": "60000",
        },
        "priceFilter": {"tickSize": grid.tick},
        "riskParameters": {"priceLimitRatioX": "0.005", "priceLimitRatioY": "0.01"},
        "symbolType": "",
    }


def bybit_linear_entry(spec: SymbolSpec, symbol_id: int, launch_ms: int) -> dict:
    """One linear instrument (shape of examples/bybit_instruments_info_linear_BTCUSDT.json)."""
    grid = spec.grids[("bybit", "linear")]
    return {
        "symbol": spec.id,
        "symbolId": symbol_id,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": spec.base,
        "quoteCoin": "USDT",
        "launchTime": str(launch_ms),
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(grid.price_decimals),
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": "25.00" if spec.recent else "100.00",
            "leverageStep": "0.01",
        },
        "priceFilter": {"minPrice": grid.tick, "maxPrice": "1999999.80", "tickSize": grid.tick},
        "lotSizeFilter": {
            "maxOrderQty": "1190000",
            "minOrderQty": grid.step,
            "qtyStep": grid.step,
            "postOnlyMaxOrderQty": "1190000",
            "maxMktOrderQty": "500000",
            "minNotionalValue": "5",
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 240 if spec.recent or spec.base == "SOL" else 480,  # SOL: 8 h -> 4 h
        "settleCoin": "USDT",
        "copyTrading": "none" if spec.recent else "both",
        "upperFundingRate": "0.02" if spec.recent else "0.00375",
        "lowerFundingRate": "-0.02" if spec.recent else "-0.00375",
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        "symbolType": "",
    }


def bybit_instruments(category: str, listing: dict[str, int]) -> list[dict]:
    """All instruments of one Bybit category ('spot' or 'linear'), sorted by symbol."""
    ids = listed_ids("bybit", category)
    if category == "spot":
        return [bybit_spot_entry(SYMBOLS[i], 9 + n) for n, i in enumerate(ids)]
    return [bybit_linear_entry(SYMBOLS[i], 5 + n, listing[i]) for n, i in enumerate(ids)]
