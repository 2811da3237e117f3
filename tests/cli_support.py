"""Shared by the command-line tests: the installed `shoplens` script, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SHOPLENS = str(Path(sys.executable).with_name("shoplens"))


def run_shoplens(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run `shoplens *args` with `env` on top of this environment; a hang past `timeout`
    seconds fails the test."""
    return subprocess.run(
        [SHOPLENS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
