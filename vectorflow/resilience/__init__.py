"""Resilience: every exchange request goes through three layers, in this order.

1. Circuit breaker per (task kind, target) -- `breaker.py`: an open breaker fails the call fast,
   without touching the network; the unit is reported as skipped.
2. Rate limiter per exchange budget -- `limiter.py`: cost-aware, shared by every process on the
   host, fed by the exchange's usage headers, Retry-After and bans.
3. Retries for transient errors only -- `retry.py`, applied per request (per page) by
   `guard.py`, which also applies the error table of `vectorflow.exchanges.classify`.

State lives in `<data dir>/state.db` (`store.py`); settings in `vectorflow.settings.resilience`.
The one entry point is `vectorflow.exchanges.client.call_endpoint`.
"""
