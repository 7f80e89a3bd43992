"""Running a command with a folder read-only, as a user's copy of a data dir may be."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Under root (which ignores permissions) a private mount namespace with the folder bind-mounted
#: read-only: nothing outside the command sees it, and it ends with the command
_MOUNT_READ_ONLY = (
    'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@"'
)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[list[str]]:
    """A wrapper command (for `run_cli(wrapper=...)`) under which `folder` cannot be written."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if not p.is_symlink()}
        for path, mode in modes.items():
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        try:
            yield []
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    wrapper = ["unshare", "--mount", "sh", "-c", _MOUNT_READ_ONLY, "sh", str(folder)]
    probe = subprocess.run([*wrapper, "sh", "-c", f"! touch '{folder}/.probe'"],
                           capture_output=True)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip("cannot make a folder read-only here (no mount namespace)")
    yield wrapper
