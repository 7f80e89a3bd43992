"""argparse `type=` functions over `vectorflow.values`: a bad value is argparse's one-line error.

argparse prints `vectorflow CMD: error: argument --port: '-1' must be at least 0` and exits 2,
before anything runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from vectorflow import values
from vectorflow.errors import InvalidInput
from vectorflow.settings import read_settings


def _typed(check: Callable, name: str, **options) -> Callable[[str], object]:
    def convert(text: str) -> object:
        try:
            return check(text, name="", **options)
        except InvalidInput as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name  # argparse names the type in some messages
    return convert


#: A count that must be at least 1 (levels, bars, tokens, workers).
count = _typed(values.count, "count")
#: A count that may be 0 (how many rows to show).
non_negative = _typed(values.integer, "non-negative integer", minimum=0)
#: A TCP port, 0 to 65535.
port = _typed(values.port, "port")
#: A number greater than 0 (a time scale, a timeout).
positive_number = _typed(values.number, "positive number", above=0)
#: A number of seconds that may be 0 (a delay).
seconds = _typed(values.number, "seconds", minimum=0)
#: A partition value matched literally (no glob characters).
literal = _typed(values.literal_name, "name")

#: How each command uses the data dir: "read" (works on a read-only one), None (not at all);
#: every other command writes to it (`doctor` only with --repair).
DATA_DIR_USE = {
    "sql": "read",
    "down": "read",
    "worker": "read",  # the stack file, to find the API
    "reconcile": "read",
    "sim": None,
    "llm-sim": None,
    "secrets": None,
}


def _data_dir_use(args: argparse.Namespace) -> str | None:
    if args.command == "doctor":  # a check reads; a repair (not a dry run) writes
        return "write" if args.repair and not args.dry_run else "read"
    return DATA_DIR_USE.get(args.command, "write")


def check_data_dir(args: argparse.Namespace) -> None:
    """InvalidInput naming the data dir when the command cannot use it (a file, read-only)."""
    use = _data_dir_use(args)
    if use is not None:
        values.data_dir(read_settings(args.data_dir).data_dir, writable=use == "write")
