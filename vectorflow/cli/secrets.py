"""`vectorflow secrets set NAME` / `vectorflow secrets list`: keys in Prefect Secret blocks.

`set` reads the value without echoing it (or from stdin when that is not a terminal, for
scripts) and saves it as the name's Secret block on the Prefect API (`PREFECT_API_URL`); `list`
shows each known name and where it is set, never a value. Names: `vectorflow.secrets.SECRETS`.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from vectorflow.cli import INVALID, OK, command_parser, prefect_environment
from vectorflow.cli.output import format_rows
from vectorflow.secrets import REDACTOR, SECRETS, secret_name


def read_value(name: str) -> str:
    """The secret typed at a hidden prompt, or the first line of stdin when it is no terminal."""
    if sys.stdin.isatty():
        return getpass.getpass(f"{name} (not echoed): ")
    return sys.stdin.readline()


def set_secret(args: argparse.Namespace) -> int:
    """Store one secret in its Prefect Secret block."""
    spec = secret_name(args.name)
    value = read_value(spec.env).strip()
    if not value:
        print(f"error: no value given for {spec.env}; nothing stored", file=sys.stderr)
        return INVALID
    REDACTOR.add(value)
    prefect_environment()
    from tasks.secrets import store_secret

    block = store_secret(spec.env, value)
    print(f"stored {spec.env} in the Prefect Secret block {block}")
    return OK


def list_secrets(args: argparse.Namespace) -> int:
    """Each known secret: its block, and whether the environment or the block sets it."""
    import os

    prefect_environment()
    from tasks.secrets import secret_block_exists

    rows = []
    for spec in SECRETS.values():
        in_env = bool(os.environ.get(spec.env, "").strip())
        in_block = secret_block_exists(spec.block)
        used = "environment" if in_env else "block" if in_block else "-"
        rows.append([spec.env, spec.block, _yes(in_env), _yes(in_block), used, spec.purpose])
    columns = ["name", "block", "environment", "block_set", "used", "purpose"]
    print(format_rows(columns, rows))
    return OK


def _yes(flag: bool) -> str:
    return "set" if flag else "-"


def add_parsers(sub) -> None:
    """The secrets command and its set and list actions."""
    parser = command_parser(
        sub,
        "secrets",
        "Store API keys in Prefect Secret blocks, or list which are set.",
        "vectorflow secrets set XAI_API_KEY",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    set_parser = command_parser(
        actions,
        "set",
        f"Store a secret without echoing it (one of {', '.join(SECRETS)}).",
        'vectorflow secrets set XAI_API_KEY   # or: printf %s "$KEY" | vectorflow secrets set ...',
    )
    set_parser.add_argument("name", help="the secret's name, e.g. XAI_API_KEY")
    set_parser.set_defaults(run=set_secret)
    list_parser = command_parser(
        actions,
        "list",
        "Show each secret's name, block and where it is set (never a value).",
        "vectorflow secrets list",
    )
    list_parser.set_defaults(run=list_secrets)
