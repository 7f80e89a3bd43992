"""The user payload (market context, signals and sections as compact JSON), its hash, messages.

The payload holds only numbers, enum-like labels and notes computed by this project and the
series names the user configured: nothing a third party wrote. Floats are rounded to 8
significant digits so the same inputs always give the same text, and so the same inputs hash.
The sections `order_book`, `cross_exchange`, `derivatives` and `higher_timeframe` are always
there: with their `time` and `source`, or with `unavailable` saying why.
The `inputs` section says what the signals were computed from: a stored row's lineage
(docs/signals.md#lineage-and-staleness), or `computed` from the candles on the fly.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from vectorflow.playbooks.contract import PROMPT_VERSION, SYSTEM_PROMPT
from vectorflow.playbooks.inputs import SECTIONS, PlaybookInputs
from vectorflow.timeframes import ms_to_iso, timeframe_ms

REGIME_FIELDS = ("regime", "adx", "plus_di", "minus_di", "natr", "natr_rank")
TPO_FIELDS = ("tpo_session", "tpo_row_size", "tpo_poor_high", "tpo_poor_low")
TRAP_FIELDS = {"last_trap_type": "type", "last_trap_time": "time", "last_trap_level": "level"}
_TEXT_LIMIT = 120  # labels and notes of this project's own making
#: the stored row's lineage (docs/signals.md#lineage-and-staleness), by the payload's names
LINEAGE_FIELDS = {"code_version": "signal_code", "signal_options": "signal_options",
                  "oi_through": "open_interest_through", "funding_through": "funding_through"}


def _round(value: object) -> object:
    kind = type(value)  # exact types first: this runs for every number of every payload
    if kind is float:
        return float(f"{value:.8g}") if math.isfinite(value) else None
    if kind is str:
        return value[:_TEXT_LIMIT]
    if value is None or kind is bool or kind is int:
        return value
    if isinstance(value, (float, np.generic)):
        return _round(value.item() if isinstance(value, np.generic) else float(value))
    if isinstance(value, dict):
        return _section(value)
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value if isinstance(value, int) else str(value)[:_TEXT_LIMIT]


def _section(values: dict[str, object]) -> dict[str, object]:
    return {k: r for k, v in values.items() if (r := _round(v)) is not None}


def valid_until(as_of_ms: int, timeframe: str, horizon_bars: int) -> int:
    """When a playbook expires: as_of plus the grading horizon."""
    return as_of_ms + horizon_bars * timeframe_ms(timeframe)


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


def build_payload(inputs: PlaybookInputs, *, horizon_bars: int = 48) -> dict:
    """The user payload of one playbook request."""
    unit, signals = inputs.unit, inputs.signals
    expiry = valid_until(inputs.as_of_ms, unit.timeframe, horizon_bars)
    payload = {
        "series": {
            "exchange": unit.exchange,
            "market": unit.market,
            "symbol": unit.symbol,
            "timeframe": unit.timeframe,
            "tick_size": inputs.tick_size,
        },
        "as_of": ms_to_iso(inputs.as_of_ms),
        "horizon": {"bars": horizon_bars, "valid_until": ms_to_iso(expiry)},
        "market": _section(inputs.market),
        "levels": _section(inputs.levels),
        "regime": _section({k: signals.get(k) for k in REGIME_FIELDS}),
        "profile": _section({k: _time(signals.get(k)) for k in TPO_FIELDS}),
        "trap": _section({name: _time(signals.get(k)) for k, name in TRAP_FIELDS.items()}),
        "inputs": _section(_inputs(signals)),
    }
    payload = {k: _section(v) if isinstance(v, dict) else v for k, v in payload.items()}
    payload = {k: v for k, v in payload.items() if v != {}}
    return payload | {name: _section(inputs.section(name)) for name in SECTIONS}


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
