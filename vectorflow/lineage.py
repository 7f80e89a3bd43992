"""The code version derived rows record: a hash of the sources of the package that computed them.

Read from the files, never by importing the package (importing `vectorflow.signals` loads numba,
~0.6 s): deciding that nothing is stale stays cheap, and no release can forget to bump it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

SIGNALS_PACKAGE = "vectorflow.signals"


@functools.cache
def code_version(package: str = SIGNALS_PACKAGE) -> str:
    """16 hex digits of sha256 over the package's `*.py` files (relative name and bytes)."""
    spec = importlib.util.find_spec(package)  # imports the parent package only
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{package} is not a package")
    root = Path(next(iter(spec.submodule_search_locations)))
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
