"""The Redis server scripts/test-scaleout.sh started: its port and password file (never the password itself on
a command line). Without them the scale-out tests skip, unless CI=true, where they fail."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_dbs = itertools.count(1)  # one Redis database per test: a test never sees another's jobs


@dataclass(frozen=True)
class RedisBoard:
    port: int
    password_file: Path
    db: int

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{self.db}"


@pytest.fixture
def redis_board() -> Iterator[RedisBoard]:
    port, password_file = os.environ.get("LBSWAP_TEST_REDIS_PORT"), os.environ.get("LBSWAP_TEST_REDIS_PASSWORD_FILE")
    if not port or not password_file:
        if os.environ.get("CI") == "true":
            pytest.fail("no Redis server: run scripts/test-scaleout.sh")
        pytest.skip("no Redis server: run scripts/test-scaleout.sh")
    yield RedisBoard(int(port), Path(password_file), next(_dbs))
