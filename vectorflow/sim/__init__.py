"""Local exchange simulator: Binance spot + USDⓈ-M and Bybit v5 REST over HTTP, for real ccxt."""

from __future__ import annotations

from vectorflow.sim.llm import FakeLLM as FakeLLM  # the fake OpenAI-compatible LLM
from vectorflow.sim.server import ExchangeSimulator, serve

__all__ = ["ExchangeSimulator", "serve"]
