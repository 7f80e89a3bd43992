"""Resilience: every request to an exchange or the LLM goes through three layers, in this order.

1. Circuit breaker per (task kind, target) -- `breaker.py`: an open breaker fails the call fast,
   without touching the network; the unit is reported as skipped.
2. Rate limiter per budget -- `limiter.py`: cost-aware, shared by every process on the host, fed
   by the server's usage headers, Retry-After and bans.
3. Retries for transient errors only -- `retry.py`, applied per request (per page) by
   `guard.py`, which also applies the target's failure table (`failures.py`).

This package knows no API by name: each caller passes its `target.Target` (failure table,
budgets, minimum ban) -- `vectorflow.exchanges.client.call_endpoint` and
`vectorflow.playbooks.client.GrokClient`. State lives in `<data dir>/state.db` (`store.py`);
settings in `vectorflow.settings.resilience`.
"""
