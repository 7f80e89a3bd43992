"""Breakers shared by hosts (`VECTORFLOW_SHARED_STATE_URL`): a real PostgreSQL server (Debian's
package, started by the test) holds them; two data dirs stand for two hosts (each its own
`state.db`, so its own rate limits). Skips, saying why, without PostgreSQL."""

from __future__ import annotations

import pytest

from tests.ops.helpers import postgres_server
from tests.resilience.conftest import BINANCE, BYBIT, KLINES, environment, write_settings
from vectorflow.config import load_settings
from vectorflow.errors import ExchangeUnavailable, InvalidInput
from vectorflow.pipelines.candles import ingest_series
from vectorflow.units import Unit


def _host(lab, data_dir, url: str):
    data_dir.mkdir(parents=True, exist_ok=True)
    write_settings(data_dir, time_scale=lab.scale, breaker_failures=3,
                   breaker_cooldown_seconds=100_000, shared_state_url=url)  # fmt: skip
    return load_settings(data_dir, env=environment(lab.sim, data_dir, lab.scale))


@pytest.mark.slow
def test_a_breaker_opened_on_one_host_fails_fast_on_another(lab, tmp_path):
    with postgres_server("vectorflow") as url:
        url = url.replace("+asyncpg", "")
        host_a = _host(lab, lab.data_dir, url)
        host_b = _host(lab, tmp_path / "host-b" / "data", url)
        lab.sim.fault("error", KLINES["binance"], status=503, times=None)  # binance klines down

        with pytest.raises(ExchangeUnavailable):  # three transient failures on host A open it
            lab.ingest(BINANCE, host_a)
        assert len(lab.klines("binance")) == 3

        # host B has never seen a failure, and its state.db is its own: it fails fast anyway
        eth = Unit("binance", "spot", "ETH/USDT", "15m")
        report = ingest_series(eth, lab.since(), lab.sim.now_ms(), host_b)
        assert report.status == "skipped", report
        assert "circuit open for fetch_candles on binance" in report.error
        assert len(lab.klines("binance")) == 3  # not one request more
        assert lab.ingest(BYBIT, host_b).status == "ok"  # other targets are not affected
        assert (host_b.data_dir / "state.db").exists()  # its rate limits: this host's own
        assert not (lab.data_dir / "state.db").samefile(host_b.data_dir / "state.db")

        # without the shared URL, host B's breakers are its own again: binance is tried
        lab.sim.clear_faults()
        write_settings(host_b.data_dir, time_scale=lab.scale, breaker_failures=3)
        alone = load_settings(host_b.data_dir, env=environment(lab.sim, host_b.data_dir, lab.scale))
        assert ingest_series(eth, lab.since(), lab.sim.now_ms(), alone).status == "ok"


def test_a_shared_state_url_that_is_not_postgresql_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match="VECTORFLOW_SHARED_STATE_URL.*'mysql'"):
        load_settings(tmp_path, env={"VECTORFLOW_SHARED_STATE_URL": "mysql://u:secret@h/db"})
    write_settings(tmp_path, shared_state_url="sqlite:///x.db")
    with pytest.raises(InvalidInput, match="shared_state_url") as refused:
        load_settings(tmp_path, env={})
    assert "secret" not in str(refused.value)
