"""Every third-party module the package imports is a declared dependency (deptry over the repo)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _deptry(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deptry", ".", "--no-ansi"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_imported_module_is_a_declared_dependency():
    # Regression: numpy, numba, plotly, rich and sqlalchemy were imported but came only
    # through other packages' dependencies
    done = _deptry(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No dependency issues found" in done.stdout + done.stderr


def test_the_check_fails_on_a_module_that_is_not_declared(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "vectorflow").mkdir()
    (tmp_path / "vectorflow" / "__init__.py").write_text("import yaml  # came with prefect\n")
    done = _deptry(tmp_path)
    assert done.returncode == 1
    assert "DEP003 'yaml' imported but it is a transitive dependency" in done.stdout + done.stderr
