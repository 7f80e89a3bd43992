"""Checks of user-given values: counts, numbers, ports, literal names and the data dir.

One function per kind of value, shared by the command line (`vectorflow.cli.arguments` wraps
them as argparse types) and the flows and library entry points (the settings file's keys keep
their pydantic bounds); times are `vectorflow.timeframes.parse_time`. Each raises InvalidInput
with one line naming the value.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from vectorflow.errors import InvalidInput

#: Characters that make a name a glob pattern (`fnmatch`, `Path.glob`): never in a literal name.
GLOB_CHARACTERS = "*?["


def _label(name: str, value: object) -> str:
    """How a message names the value: `--port '-1'`, or `'-1'` (argparse names the option)."""
    return f"{name} {value!r}" if name else repr(value)


def integer(
    value: str | int, *, name: str, minimum: int | None = None, maximum: int | None = None
) -> int:
    """`value` as an integer within [minimum, maximum]; InvalidInput naming it otherwise."""
    if isinstance(value, bool):
        raise InvalidInput(f"{_label(name, value)} is not a whole number")
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise InvalidInput(f"{_label(name, value)} is not a whole number") from None
    if minimum is not None and number < minimum:
        raise InvalidInput(f"{_label(name, value)} must be at least {minimum}")
    if maximum is not None and number > maximum:
        raise InvalidInput(f"{_label(name, value)} must be at most {maximum}")
    return number


def count(value: str | int, *, name: str, maximum: int | None = None) -> int:
    """A count of things that must be at least 1 (workers, levels, bars, tokens)."""
    return integer(value, name=name, minimum=1, maximum=maximum)


def number(
    value: str | float, *, name: str, minimum: float | None = None, above: float | None = None
) -> float:
    """`value` as a finite number, at least `minimum` and greater than `above` when given."""
    try:
        result = float(str(value).strip()) if not isinstance(value, float | int) else value
    except ValueError:
        raise InvalidInput(f"{_label(name, value)} is not a number") from None
    if not math.isfinite(result):
        raise InvalidInput(f"{_label(name, value)} is not a finite number")
    if minimum is not None and result < minimum:
        raise InvalidInput(f"{_label(name, value)} must be at least {minimum:g}")
    if above is not None and result <= above:
        raise InvalidInput(f"{_label(name, value)} must be greater than {above:g}")
    return float(result)


def port(value: str | int, *, name: str = "port") -> int:
    """A TCP port, 0 (any free one) to 65535."""
    return integer(value, name=name, minimum=0, maximum=65535)


def port_in_use(host: str, number: int, error: OSError) -> InvalidInput:
    """The error to raise when binding `host:number` failed with `error`."""
    reason = "is in use" if error.errno == 98 else f"cannot be bound ({error.strerror})"
    return InvalidInput(f"port {number} on {host} {reason}: choose another with --port")


def literal_name(value: str, *, name: str) -> str:
    """`value` when it has no glob character (names are matched literally, never as patterns)."""
    text = str(value)
    bad = sorted({ch for ch in text if ch in GLOB_CHARACTERS})
    if bad:
        raise InvalidInput(
            f"{_label(name, value)} is not a literal name: {' '.join(bad)} would match others"
        )
    if not text.strip():
        raise InvalidInput(f"{_label(name, value)} is not a name")
    return text


def data_dir(path: Path, *, writable: bool) -> Path:
    """`path` when it can serve as the data dir: a folder (or one that can be made), writable
    when `writable`; InvalidInput naming it otherwise. Nothing is created here."""
    hint = "(--data-dir or VECTORFLOW_DATA_DIR)"
    existing = next(p for p in (path, *path.parents) if p.exists())  # "/" always exists
    if not existing.is_dir():
        what = "is a file" if existing == path else f"is under {existing}, a file"
        raise InvalidInput(f"data dir {path} {what}, not a folder {hint}")
    if writable and not os.access(existing, os.W_OK):
        where = "" if existing == path else f" (it would be made in {existing})"
        raise InvalidInput(f"data dir {path} is read-only{where}: this command writes to it {hint}")
    return path
