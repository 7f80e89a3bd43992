"""The settings of a run, whole: the keys (`vectorflow.settings`) and the lake's storage.

The settings are a core package, below the lake, so they cannot open the storage their
`[lake] url` names; this module, above both, is the one place that does, once per load: every
command, flow and benchmark takes its `Settings` from `load_settings` and passes them down.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from vectorflow.errors import InvalidInput
from vectorflow.settings import ReadSettings, Settings, read_settings

if TYPE_CHECKING:  # the storage (pyarrow, DuckDB) is imported by the first load, not by `--help`
    from vectorflow.lake.storage import Storage


def load_settings(
    data_dir: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Resolve settings: `data_dir` (command line), then environment, then file, then defaults;
    the lake's storage opened from the resolved `[lake] url` (`VECTORFLOW_LAKE_URL`).

    `env` replaces the process environment (nothing is read from os.environ when it is given).
    """
    read = read_settings(data_dir, env)
    return Settings(
        **dict(read.keys),
        data_dir=read.data_dir,
        config_path=read.config_path,
        storage=_storage(read),
    )


def _storage(read: ReadSettings) -> Storage:
    """The lake's storage; an S3 endpoint that is no URL fails now, at start."""
    from vectorflow.lake.storage import open_storage

    try:
        return open_storage(
            read.keys.lake.url,
            read.data_dir,
            shared_url=read.keys.resilience.shared_state_url,
            env=read.env,
        )
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
