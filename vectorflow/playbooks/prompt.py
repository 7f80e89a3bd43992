"""The user payload (market context and signals as compact JSON), its hash and the messages.

The payload holds only numbers, enum-like labels computed by this project and the series names
the user configured: nothing a third party wrote. Floats are rounded to 8 significant digits so
the same inputs always give the same text, and so the same inputs hash.
"""

from __future__ import annotations

import hashlib
import json
import math

from vectorflow.playbooks.contract import PROMPT_VERSION, SYSTEM_PROMPT
from vectorflow.playbooks.inputs import PlaybookInputs
from vectorflow.timeframes import ms_to_iso

REGIME_FIELDS = ("regime", "adx", "plus_di", "minus_di", "natr", "natr_rank")
TPO_FIELDS = ("tpo_session", "tpo_row_size", "tpo_poor_high", "tpo_poor_low")
TRAP_FIELDS = {"last_trap_type": "type", "last_trap_time": "time", "last_trap_level": "level"}
DERIVATIVE_FIELDS = (
    "oi_quadrant",
    "oi_change",
    "oi_change_24h",
    "price_change",
    "oi_zscore",
    "funding_annualized",
    "crowded_longs",
    "squeeze_fuel",
)
CROSS_PREFIXES = ("xex_", "cross_")  # cross-exchange spread / basis columns, when stored
#: the stored row's lineage (docs/signals.md#lineage-and-staleness), by the payload's names
LINEAGE_FIELDS = {"code_version": "signal_code", "signal_options": "signal_options",
                  "oi_through": "open_interest_through", "funding_through": "funding_through"}


def _round(value: object) -> object:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return None if not math.isfinite(value) else float(f"{value:.8g}")
    if isinstance(value, int):
        return value
    return str(value)[:64]


def _section(values: dict[str, object]) -> dict[str, object]:
    return {k: r for k, v in values.items() if (r := _round(v)) is not None}


def _time(value: object) -> object:
    """A time column (epoch ms) as ISO text; other values as they are."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 10**11:
        return ms_to_iso(value)
    return value


def _inputs(signals: dict[str, object]) -> dict[str, object]:
    """Which inputs the signals had: a stored row's lineage, or computed from the candles."""
    if not signals:
        return {}
    if "code_version" not in signals:
        return {"signals": "computed"}  # on the fly, from the candles
    lineage = {name: _time(signals.get(k)) for k, name in LINEAGE_FIELDS.items()}
    return {"signals": "stored"} | lineage


def build_payload(inputs: PlaybookInputs) -> dict:
    """The user payload of one playbook request."""
    unit, signals = inputs.unit, inputs.signals
    payload = {
        "series": {
            "exchange": unit.exchange,
            "market": unit.market,
            "symbol": unit.symbol,
            "timeframe": unit.timeframe,
        },
        "as_of": ms_to_iso(inputs.as_of_ms),
        "market": _section(inputs.market),
        "levels": _section(inputs.levels),
        "regime": _section({k: signals.get(k) for k in REGIME_FIELDS}),
        "profile": _section({k: _time(signals.get(k)) for k in TPO_FIELDS}),
        "trap": _section({name: _time(signals.get(k)) for k, name in TRAP_FIELDS.items()}),
        "derivatives": _section({k: signals.get(k) for k in DERIVATIVE_FIELDS}),
        "cross_exchange": _section(
            {k: v for k, v in signals.items() if k.startswith(CROSS_PREFIXES)}
        ),
        "inputs": _section(_inputs(signals)),
    }
    return {k: v for k, v in payload.items() if v != {}}


def payload_text(payload: dict) -> str:
    """Compact, canonical JSON of the payload (sorted keys, no spaces, no NaN)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)


def inputs_hash(model: str, text: str) -> str:
    """The cache key: sha256 of (model, prompt version, system prompt, user payload)."""
    blob = "\x1f".join([model, PROMPT_VERSION, SYSTEM_PROMPT, text])
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def messages(text: str) -> list[dict[str, str]]:
    """The first request's messages: the versioned system prompt and the payload."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": text},
    ]


def repair_messages(text: str, answer: str, error: str) -> list[dict[str, str]]:
    """The repair request: the conversation so far and the validation error, quoted."""
    return [
        *messages(text),
        {"role": "assistant", "content": answer[:20_000]},
        {
            "role": "user",
            "content": (
                f"Your answer was rejected: {error}. Answer again with one corrected JSON object "
                "matching the schema and every rule of the system message."
            ),
        },
    ]
