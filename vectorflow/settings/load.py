"""Resolve the settings: defaults, then the TOML file, then the environment, then arguments.

The environment is read by pydantic-settings: `VECTORFLOW_` and the key, `__` between nested
keys, lists and tables as JSON (`ENV_ALIASES` adds the older short names). Each bad value is
one InvalidInput naming where it came from (the file, or the variable) and the value, except
values that may hold a secret (`SECRET_KEYS`), which are never echoed.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import EnvSettingsSource
from pydantic_settings.exceptions import SettingsError
from pydantic_settings.sources.utils import parse_env_vars

from vectorflow.errors import InvalidInput
from vectorflow.settings.model import SettingsKeys

ENV_PREFIX = "VECTORFLOW_"
ENV_NESTED_DELIMITER = "__"
CONFIG_ENV = "VECTORFLOW_CONFIG"
DATA_DIR_ENV = "VECTORFLOW_DATA_DIR"

#: Short names kept from before every key had its `VECTORFLOW_SECTION__KEY` name; when both
#: are set, the long name wins.
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "VECTORFLOW_BINANCE_URL": ("exchanges", "binance", "url"),
    "VECTORFLOW_BYBIT_URL": ("exchanges", "bybit", "url"),
    "VECTORFLOW_BINANCE_WS_URL": ("exchanges", "binance", "ws_url"),
    "VECTORFLOW_BYBIT_WS_URL": ("exchanges", "bybit", "ws_url"),
    "VECTORFLOW_TIME_SCALE": ("resilience", "time_scale"),
    "VECTORFLOW_SHARED_STATE_URL": ("resilience", "shared_state_url"),
    "VECTORFLOW_DASK_ADDRESS": ("backtest", "dask_address"),
    "VECTORFLOW_LLM_MODEL": ("playbooks", "model"),
    "XAI_BASE_URL": ("playbooks", "base_url"),
    "VECTORFLOW_LAKE_URL": ("lake", "url"),
    "VECTORFLOW_WEBHOOK_URL": ("notifications", "webhook_url"),
    "VECTORFLOW_REPORTS_URL": ("reports", "url"),
}

#: Keys whose values may hold a token or a password: named in errors, never shown.
SECRET_KEYS = frozenset({("notifications", "webhook_url"), ("resilience", "shared_state_url")})


@dataclass(frozen=True)
class ReadSettings:
    """What the settings file and the environment say: every key checked, and where from."""

    data_dir: Path
    config_path: Path
    keys: SettingsKeys
    env: dict[str, str]  # the environment that was read (the lake's storage reads it too)


def read_settings(
    data_dir: str | Path | None = None, env: Mapping[str, str] | None = None
) -> ReadSettings:
    """Resolve the keys: `data_dir` (command line), then environment, then file, then defaults.

    `env` replaces the process environment (nothing is read from os.environ when it is given).
    A whole `Settings`, the lake's storage included, is `vectorflow.config.load_settings`.
    """
    env = dict(os.environ if env is None else env)
    root = Path(data_dir or env.get(DATA_DIR_ENV, "").strip() or "data").expanduser().resolve()
    config = config_path(root, env)
    values = _merge(_read_file(config), _read_env(env))
    try:
        keys = SettingsKeys.model_validate(values)
    except ValidationError as exc:
        raise InvalidInput(_explain(exc, env, config)) from None
    return ReadSettings(data_dir=root, config_path=config, keys=keys, env=env)


def config_path(data_dir: Path, env: Mapping[str, str]) -> Path:
    """The settings file: `VECTORFLOW_CONFIG` (a file that exists), else the data dir's."""
    named = env.get(CONFIG_ENV, "").strip()
    path = Path(named or data_dir / "vectorflow.toml").expanduser().resolve()
    if path.is_dir():
        raise InvalidInput(f"settings file {path} is a directory ({CONFIG_ENV} or the data dir)")
    if named and not path.exists():
        raise InvalidInput(f"{CONFIG_ENV}={named!r}: no such settings file ({path})")
    return path


def _read_file(path: Path) -> dict:
    """The file's keys, checked on their own so that a bad value is named as the file's."""
    if not path.exists():
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"malformed settings file {path}: {exc}") from None
    except OSError as exc:
        raise InvalidInput(f"settings file {path} cannot be read: {exc.strerror}") from None
    try:
        SettingsKeys.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(_explain(exc, {}, path)) from None
    return raw


class _GivenEnv(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._given = env
        super().__init__(
            SettingsKeys,  # type: ignore[arg-type] - only its fields and config are read
            case_sensitive=False,
            env_prefix=ENV_PREFIX,
            env_nested_delimiter=ENV_NESTED_DELIMITER,
            env_ignore_empty=True,
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._given, False, self.env_ignore_empty, self.env_parse_none_str)

    def decode_complex_value(self, field_name, field, value):
        """JSON of a list or table; InvalidInput naming the variable when it is none."""
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            name = next((k for k, v in self._given.items() if v == value), field_name)
            raise InvalidInput(
                f"{name}={value!r} is not JSON (lists and tables are given as JSON, "
                f"e.g. '[\"ETH/USDT\"]')"
            ) from None


def _read_env(env: Mapping[str, str]) -> dict:
    """The keys the environment sets, as nested dicts: the short names, then the long ones."""
    values: dict = {}
    for name, path in ENV_ALIASES.items():
        if env.get(name, "").strip():
            values = _merge(values, _nest(path, env[name].strip()))
    try:
        return _merge(values, _GivenEnv(env)())
    except SettingsError as exc:
        if isinstance(exc.__cause__, InvalidInput):
            raise exc.__cause__ from None
        raise InvalidInput(f"environment: {exc}") from None


def _nest(path: tuple[str, ...], value: object) -> dict:
    for key in reversed(path):
        value = {key: value}
    return value  # type: ignore[return-value]


def _merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`, tables merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _explain(exc: ValidationError, env: Mapping[str, str], config: Path) -> str:
    """Each problem: which variable or file key, its value (unless secret), why."""
    from_env, from_file = [], []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(loc)
        extra = err["type"] == "extra_forbidden"
        why = "not a settings key" if extra else err["msg"].removeprefix("Value error, ")
        secret = loc[:2] in SECRET_KEYS
        variable, depth = _variable(loc, env)
        if variable is not None:
            shown = "" if secret else f" {env[variable]!r}"
            inner = f" {key}:" if len(loc) > depth or extra else ""  # a key inside JSON
            from_env.append(f"{variable}{shown}:{inner} {why}")
        else:
            got = "" if secret or "input" not in err else f" (got {err['input']!r})"
            from_file.append(f"{key}: {why}{got}")
    if from_file:
        from_env.append(f"malformed settings file {config}: " + "; ".join(from_file))
    return "; ".join(from_env)


def _variable(loc: tuple[str, ...], env: Mapping[str, str]) -> tuple[str | None, int]:
    """The environment variable that set the value at `loc`, if one did, and the depth it names."""
    upper = {k.upper(): k for k in env if env[k].strip()}
    for depth in range(len(loc), 0, -1):
        name = ENV_PREFIX + ENV_NESTED_DELIMITER.join(loc[:depth]).upper()
        if name in upper:
            return upper[name], depth
    for name, path in ENV_ALIASES.items():
        if name in upper and loc[: len(path)] == path:
            return upper[name], len(path)
    return None, 0
