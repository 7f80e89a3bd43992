"""The command-line reference, generated from `vectorflow.cli.build_parser()` so it cannot drift.

Every command and subcommand: its summary, usage, each argument and option with its help,
default and choices, and the worked example from its `--help`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

from cells import cell

from vectorflow.cli import build_parser


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands by name, in the order they were added ({} when none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def commands(
    parser: argparse.ArgumentParser | None = None,
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(full command, parser) of every command and subcommand, depth first."""
    parser = parser or build_parser()
    for sub in subcommands(parser).values():
        yield sub.prog, sub
        yield from commands(sub)


def _argument(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    flags = ", ".join(action.option_strings)
    if action.nargs == 0:
        return f"`{flags}`"
    return f"`{flags} {action.metavar or action.dest.upper()}`"


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    text = parser._get_formatter()._expand_help(action) if action.help else ""
    extras = []
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        extras.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
    if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
        extras.append(f"default `{action.default}`")
    if action.required and action.option_strings:
        extras.append("required")
    return cell("; ".join([text.rstrip(".")] + extras if text else extras))


def _usage(parser: argparse.ArgumentParser) -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps usage lines at the terminal's width
    lines = parser.format_usage().removeprefix("usage: ").rstrip().splitlines()
    return "\n".join([lines[0], *(line[len("usage: "):] for line in lines[1:])])


def command_section(prog: str, parser: argparse.ArgumentParser) -> str:
    """One command: heading, summary, usage, arguments table, example."""
    out = [f"### `{prog}`", "", parser.description or "", "", "```text", _usage(parser), "```", ""]
    rows = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    if rows:
        out += ["| argument | meaning |", "|---|---|"]
        for action in rows:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    link = f"[`{sub.prog}`](#{sub.prog.replace(' ', '-')})"
                    out.append(f"| {link} | {cell(sub.description or '')} |")
            else:
                out.append(f"| {_argument(action)} | {_help(parser, action)} |")
        out.append("")
    example = (parser.epilog or "").removeprefix("example:").strip("\n")
    if example:
        lines = [line.removeprefix("  ") for line in example.splitlines()]
        out += ["Example:", "", "```bash", *lines, "```", ""]
    return "\n".join(out)


def render(_argument: str | None = None) -> str:
    """Global options, then every command in the order `vectorflow --help` lists them."""
    parser = build_parser()
    out = [command_section(parser.prog, parser)]
    out += [command_section(prog, sub) for prog, sub in commands(parser)]
    return "\n".join(out)
