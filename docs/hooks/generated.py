"""mkdocs hook: replace `<!-- generated: NAME [ARGUMENT] -->` lines with tables built from code.

The reference parts of the docs (settings, CLI, jobs, view columns, exchange budgets) are read
from the code at build time, so they cannot drift from it. An unknown NAME, a settings field
without a description or a catalog view the docs leave out fails the build.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the docs describe this checkout's code, whatever is installed

import cli_reference  # noqa: E402
import exchange_tables  # noqa: E402
import jobs_table  # noqa: E402
import settings_reference  # noqa: E402
import strategies_table  # noqa: E402
import views_reference  # noqa: E402
from mkdocs.exceptions import PluginError  # noqa: E402

MARKER = re.compile(r"^<!-- generated: ([a-z-]+)(?: ([a-z_]+))? -->$", re.MULTILINE)

GENERATORS = {
    "settings": settings_reference.render,
    "cli": cli_reference.render,
    "jobs": jobs_table.render,
    "columns": views_reference.render,
    "strategies": strategies_table.render,
    "datasets": views_reference.datasets_table,
    "budgets": lambda _: exchange_tables.budgets(),
    "weights": lambda _: exchange_tables.weights(),
    "endpoints": lambda _: exchange_tables.endpoints(),
    "errors": lambda _: exchange_tables.error_rules(),
}

_documented_views: set[str] = set()


def _replace(match: re.Match) -> str:
    name, argument = match[1], match[2]
    if name not in GENERATORS:
        raise PluginError(f"unknown generated block {name!r}; known: {', '.join(GENERATORS)}")
    if name == "columns":
        _documented_views.add(argument)
    try:
        return GENERATORS[name](argument)
    except (ValueError, RuntimeError) as exc:
        raise PluginError(f"generated block {name} {argument or ''}: {exc}") from exc


def on_pre_build(config) -> None:
    """Start each build (`mkdocs serve` rebuilds) with no view documented yet."""
    _documented_views.clear()


def on_page_markdown(markdown: str, page, config, files) -> str:
    """The page with every generated block filled in."""
    return MARKER.sub(_replace, markdown)


def on_post_build(config) -> None:
    """Fail the build when a catalog view has no column table in the docs."""
    missing = views_reference.missing_views(_documented_views)
    if missing:
        raise PluginError(f"catalog views missing from the docs: {', '.join(missing)}")
