"""`python -m vectorflow.cli` runs the command line (tests start CLI processes this way)."""

from vectorflow.cli import entry

entry()
