"""`python -m vectorflow.cli` runs the command line (tests start CLI processes this way)."""

import sys

from vectorflow.cli import main

sys.exit(main())
