"""Write the playbook of one series: rules or Grok, cache, budget, validation, one repair.

Statuses: `ok` (first answer valid), `repaired` (valid after the one repair request),
`abstained` (still invalid: stored without a direction), `error` (the request failed; the
rule-based playbook is written beside it), `skipped_stale` and `skipped_budget` (no request).
Nothing invalid is ever stored as a playbook: fields come only from a validated answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from vectorflow.errors import (
    BudgetSpent,
    CircuitOpen,
    PermanentError,
    PlaybookRejected,
    TransientError,
)
from vectorflow.lake.storage import Storage
from vectorflow.playbooks.budget import TokenBudget, estimate_tokens
from vectorflow.playbooks.client import Completion, GrokClient
from vectorflow.playbooks.contract import PROMPT_VERSION, SYSTEM_PROMPT, Playbook
from vectorflow.playbooks.history import LoadOptions, load_inputs
from vectorflow.playbooks.inputs import PlaybookInputs
from vectorflow.playbooks.prompt import (
    build_payload,
    inputs_hash,
    messages,
    payload_text,
    repair_messages,
    valid_until,
)
from vectorflow.playbooks.record import PlaybookRecord, playbook_id
from vectorflow.playbooks.rules import RULES_VERSION, rules_playbook
from vectorflow.playbooks.store import find_cached, write_playbooks
from vectorflow.playbooks.ticks import market_label
from vectorflow.playbooks.validate import MarketFrame, validate_answer
from vectorflow.settings.playbooks import PlaybookSettings
from vectorflow.timeframes import now_ms
from vectorflow.units import Unit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteContext:
    """What a run shares between its series: settings, client, budget, run id."""

    config: PlaybookSettings
    lake: Storage
    run_id: str
    client: GrokClient | None = None  # None: no key configured, rules only (its guard: breaker)
    budget: TokenBudget | None = None
    timeframes: tuple[str, ...] = ()  # configured: a series' higher timeframe is the next one
    tpo_row_sizes: dict[str, float] = field(default_factory=dict)  # by unified symbol
    ticks: dict[str, float] = field(default_factory=dict)  # by unit label, from the markets

    def load_options(self, unit: Unit) -> LoadOptions:
        """How the inputs of `unit` are read."""
        return LoadOptions(
            lookback_bars=self.config.lookback_bars,
            timeframes=self.timeframes,
            tpo_row_size=self.tpo_row_sizes.get(unit.symbol),
            tick_size=self.ticks.get(market_label(unit)),
        )

    def payload(self, inputs: PlaybookInputs) -> str:
        """The payload text of `inputs` (its hash is the cache key)."""
        return payload_text(build_payload(inputs, horizon_bars=self.config.horizon_bars))


def _base(inputs: PlaybookInputs, ctx: WriteContext, source: str, text: str | None) -> dict:
    unit, market, regime = inputs.unit, inputs.market, inputs.signals.get("regime")
    model = ctx.config.model if source == "grok" else RULES_VERSION
    digest = inputs_hash(model, text) if text is not None else None
    return dict(
        created_at=now_ms(),
        run_id=ctx.run_id,
        exchange=unit.exchange,
        market=unit.market,
        symbol=unit.symbol,
        timeframe=unit.timeframe,
        as_of=inputs.as_of_ms,
        source=source,
        model=model,
        prompt_version=PROMPT_VERSION if source == "grok" else None,
        inputs_hash=digest,
        last_price=market.get("last_price"),
        atr=market.get("atr"),
        regime=regime if isinstance(regime, str) else None,
        payload=text,
        valid_until=valid_until(inputs.as_of_ms, unit.timeframe, ctx.config.horizon_bars),
        tick_size=inputs.tick_size,
    )


def _record(inputs: PlaybookInputs, ctx: WriteContext, source: str, text: str | None, **kw):
    base = {**_base(inputs, ctx, source, text), **kw}
    run = "" if source == "rules" and base.get("status") == "ok" else ctx.run_id
    pid = playbook_id(inputs.unit, inputs.as_of_ms, source, base["inputs_hash"] or "", run)
    return PlaybookRecord(playbook_id=pid, **base)


def rules_record(inputs: PlaybookInputs, ctx: WriteContext, text: str) -> PlaybookRecord:
    """The rule-based playbook of `inputs` as a record (the same inputs give the same id)."""
    playbook = rules_playbook(inputs, max_atr_distance=ctx.config.max_atr_distance)
    record = _record(inputs, ctx, "rules", text, status="ok")
    return record.with_playbook(playbook, inputs.citable_levels())


@dataclass
class _Spend:
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0
    requests: int = 0

    def fields(self) -> dict:
        return dict(vars(self))


def _ask(ctx: WriteContext, msgs: list[dict], spend: _Spend) -> Completion:
    """One request (through the client's guard), paid from the budget (BudgetSpent if refused)."""
    estimate = estimate_tokens(*(m["content"] for m in msgs))
    if ctx.budget is not None and not ctx.budget.reserve(estimate):
        raise BudgetSpent("the run's token budget is spent")
    actual = estimate  # a failed request is charged its estimate: it may have been billed
    before = ctx.client.requests_made
    try:
        completion = ctx.client.complete(msgs)
        actual = completion.tokens_in + completion.tokens_out or estimate
    finally:
        sent = ctx.client.requests_made - before  # retries included; 0: the breaker refused
        spend.requests += sent
        if ctx.budget is not None:
            ctx.budget.settle(estimate, actual if sent else 0)
    spend.tokens_in += completion.tokens_in
    spend.tokens_out += completion.tokens_out
    spend.latency_ms += completion.latency_ms
    return completion


def _answer(ctx: WriteContext, msgs: list[dict], spend: _Spend, answers: list[str], frame):
    """Ask once and validate: the playbook, or PlaybookRejected naming the broken rule."""
    completion = _ask(ctx, msgs, spend)
    answers.append(completion.content or "")
    if completion.content is None:
        raise PlaybookRejected("the model gave no answer text (a refusal or an empty message)")
    if completion.finish_reason == "length":
        raise PlaybookRejected("the answer was cut off at max_tokens; answer more briefly")
    return validate_answer(completion.content, frame, max_atr_distance=ctx.config.max_atr_distance)


def _grok(inputs: PlaybookInputs, ctx: WriteContext, text: str) -> PlaybookRecord:
    """Ask Grok, with one repair request; the record says how it went."""
    frame = MarketFrame(inputs.last_close, inputs.atr, inputs.citable_levels())
    spend, answers = _Spend(), []

    def done(status: str, playbook: Playbook | None = None, error: str | None = None):
        record = _record(
            inputs,
            ctx,
            "grok",
            text,
            status=status,
            error=error,
            raw_answers=tuple(answers),
            **spend.fields(),
        )
        if playbook is None:
            return record
        return record.with_playbook(playbook, inputs.citable_levels())

    try:
        try:
            return done("ok", _answer(ctx, messages(text), spend, answers, frame))
        except PlaybookRejected as rejected:
            first = rejected
        log.info("%s: answer rejected (%s); asking for a repair", inputs.unit.label, first)
        repair = repair_messages(text, answers[0], str(first))
        try:
            return done("repaired", _answer(ctx, repair, spend, answers, frame))
        except PlaybookRejected as again:
            return done("abstained", error=f"first answer: {first}; repaired answer: {again}")
        except BudgetSpent:
            return done("abstained", error=f"{first}; no budget left for a repair")
    except BudgetSpent:
        return done("skipped_budget", error="the run's token budget is spent")
    except CircuitOpen:
        if not answers:
            raise  # nothing asked yet: the rule-based writer answers instead
        return done("error", error="the grok circuit breaker opened before the repair request")
    except (TransientError, PermanentError) as exc:
        return done("error", error=str(exc)[:1000])


def _from_cache(inputs: PlaybookInputs, ctx: WriteContext, text: str) -> PlaybookRecord | None:
    digest = inputs_hash(ctx.config.model, text)
    stored = find_cached(ctx.lake, inputs.unit, digest, inputs.as_of_ms)
    if stored is None:
        return None
    fresh = _record(inputs, ctx, "grok", text, status=stored.status)
    return replace(
        stored,
        playbook_id=fresh.playbook_id,
        created_at=fresh.created_at,
        run_id=ctx.run_id,
        cached=True,
        tokens_in=0,
        tokens_out=0,
        latency_ms=0,
        requests=0,
    )


def grok_records(inputs: PlaybookInputs, ctx: WriteContext, text: str) -> list[PlaybookRecord]:
    """Grok's record of fresh inputs: from the cache, or asked (CircuitOpen when not asked)."""
    cached = _from_cache(inputs, ctx, text)
    return [cached] if cached is not None else [_grok(inputs, ctx, text)]


def playbooks_for(
    inputs: PlaybookInputs, ctx: WriteContext, sources: tuple[str, ...] | None = None
) -> list[PlaybookRecord]:
    """The records one series gets: skipped, rules, or Grok (plus rules after a Grok error).

    `sources` (a replay's): write exactly these (`rules`, `grok`); default: Grok when a client
    is set, else rules.
    """
    fallback = sources is None
    sources = sources or (("grok",) if ctx.client is not None else ("rules",))
    if inputs.stale is not None:
        return [
            _record(inputs, ctx, source, None, status="skipped_stale", error=inputs.stale)
            for source in sources
        ]
    text = ctx.payload(inputs)
    records = [rules_record(inputs, ctx, text)] if "rules" in sources else []
    if "grok" not in sources:
        return records
    try:
        grok = grok_records(inputs, ctx, text)
    except CircuitOpen as exc:
        log.warning("%s: %s; writing the rule-based playbook", inputs.unit.label, exc)
        return [rules_record(inputs, ctx, text)] if fallback else records + [
            _record(inputs, ctx, "grok", text, status="error", error=str(exc)[:1000])
        ]
    if grok[0].status == "error" and fallback:
        log.warning(
            "%s: grok failed (%s); writing the rule-based playbook",
            inputs.unit.label,
            grok[0].error,
        )
        return grok + [rules_record(inputs, ctx, text)]
    return records + grok


def write_series_playbook(
    unit: Unit, ctx: WriteContext, *, as_of_ms: int | None = None
) -> list[PlaybookRecord]:
    """Read the inputs of `unit` from the lake, write its playbook(s) and store them."""
    inputs = load_inputs(ctx.lake, unit, as_of_ms, options=ctx.load_options(unit), now_ms=now_ms())
    records = playbooks_for(inputs, ctx)
    write_playbooks(ctx.lake, records)
    for record in records:
        log.info(
            "%s: %s playbook %s (%s)",
            unit.label,
            record.source,
            record.status,
            record.bias or "no direction",
        )
    return records


__all__ = ["SYSTEM_PROMPT", "WriteContext", "playbooks_for", "write_series_playbook"]
