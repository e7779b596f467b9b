"""Shared fixtures. CLI tests run this checkout's sources (PYTHONPATH=src), never an installed copy."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """Run ``python -m lbswap ARGS`` in a subprocess with a private XDG_STATE_HOME; returns the result."""

    def run(args: Sequence[str], *, env: dict[str, str] | None = None, check: bool = False, timeout: float = 120):
        full_env = {**os.environ, "PYTHONPATH": str(SRC), "XDG_STATE_HOME": str(tmp_path / "state")}
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "lbswap", *args],
            capture_output=True,
            text=True,
            env=full_env,
            check=check,
            timeout=timeout,
        )

    return run
