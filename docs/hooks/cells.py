"""Markdown table cells for the generated pages."""

from __future__ import annotations


def cell(text: str) -> str:
    """Text for a table cell: one line, pipes escaped, `<` outside code spans not read as HTML."""
    parts = text.replace("|", "\\|").replace("\n", " ").split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;") for i, p in enumerate(parts))
