"""`vectorflow doctor`: verify every partition of the lake; `--repair` what can be repaired.

Exit codes: 0 when the lake is sound (after the repair, with `--repair`), 4 when something is
wrong (every problem named by path), 2 for invalid input.
"""

from __future__ import annotations

import argparse
import logging

from vectorflow.cli import command_parser

CLEAN, BROKEN = 0, 4
COLUMNS = ["path", "problem", "repair"]


def _print_problems(problems, fmt: str, heading: str) -> None:
    from vectorflow.cli.output import format_rows

    print(heading)
    print(format_rows(COLUMNS, [[p.path, p.what, p.repair] for p in problems], fmt))


def doctor(args: argparse.Namespace) -> int:
    """Check the lake; with --repair, repair it and check it again."""
    from vectorflow.config import load_settings
    from vectorflow.errors import InvalidInput
    from vectorflow.lake.catalog import refresh_catalog
    from vectorflow.lake.doctor import check_lake, repair_lake
    from vectorflow.lake.schema import DATASETS

    unknown = sorted(set(args.dataset or []) - set(DATASETS))
    if unknown:
        names = ", ".join(DATASETS)
        raise InvalidInput(f"--dataset {', '.join(unknown)}: unknown; expected one of {names}")
    settings = load_settings(args.data_dir)
    logging.getLogger("vectorflow.lake").setLevel(logging.ERROR)  # the table says it all
    problems = check_lake(settings.storage, args.dataset)
    if not problems:
        print(f"lake {settings.storage.root}: every partition checked, nothing wrong")
        return CLEAN
    if not args.repair or args.dry_run:
        verb = "would be repaired" if args.repair else "found (vectorflow doctor --repair)"
        _print_problems(problems, args.format, f"{len(problems)} problem(s) {verb}:")
        return BROKEN
    done = repair_lake(settings.storage, settings.lake.delete_grace_seconds, args.dataset)
    print("repaired:\n" + "\n".join(f"  - {line}" for line in done))
    refresh_catalog(settings)
    left = check_lake(settings.storage, args.dataset)
    if left:
        _print_problems(left, args.format, f"{len(left)} problem(s) left:")
        return BROKEN
    print(f"lake {settings.storage.root}: repaired; nothing wrong now")
    return CLEAN


def add_parsers(sub) -> None:
    """The doctor command."""
    parser = command_parser(
        sub,
        "doctor",
        "Verify every partition of the lake (links, manifests, each file's rows and key range "
        "against its name and its dataset's schema), naming each problem by path. Exit 0 "
        "sound, 4 something wrong. --repair relinks, rewrites what can be rebuilt and moves "
        "what cannot to <data dir>/quarantine/ (never deleting it).",
        "vectorflow doctor --repair --dry-run",
    )
    parser.add_argument("--repair", action="store_true", help="repair what can be repaired")
    parser.add_argument(
        "--dry-run", action="store_true", help="with --repair: say what would be done, do nothing"
    )
    parser.add_argument(
        "--dataset", action="append", help="check only this dataset (repeatable; default: all)"
    )
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.set_defaults(run=doctor)
