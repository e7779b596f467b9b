"""Tier 3 fixtures: a real local cloud per test (namespaces, haproxy, nftables), always taken down after.

Outside CI a missing prerequisite (root, a tool) skips; with CI=true it fails, so CI never skips a tier."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbswap.clouds.local import LocalCloud

TOOLS = ("ip", "nft", "haproxy", "keepalived", "conntrack", "arping", "setsid", "ss")


def _missing() -> list[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    return missing


@pytest.fixture(autouse=True)
def _prerequisites() -> None:
    missing = _missing()
    if missing:
        message = f"tier 3 needs {', '.join(missing)}: run scripts/setup-dataplane.sh as root"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloud]:
    local = LocalCloud(str(tmp_path / "cloud"))
    try:
        local.up(boot_seconds=1.0)
        yield local
    finally:
        local.down()
