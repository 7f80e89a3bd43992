"""Exchange layer on ccxt: clients, symbols and markets, raw kline paging and validation."""
