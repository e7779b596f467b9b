"""Usage errors: one line on stderr, exit 2, before any cloud is touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lbswap.clouds import fake
from tests.conftest import RunCli

CASES = [
    (["run", "--lb", "x", "--parallel", "0"], "--parallel: '0' must be 1 or more"),
    (["run", "--lb", "x", "--drain-timeout", "-5"], "--drain-timeout: '-5' must be 0 or more"),
    (["run", "--lb", "x", "--stats-interval", "0"], "--stats-interval: '0' must be a finite number above 0"),
    (["run", "--lb", "x", "--keep-source", "abc"], "--keep-source: 'abc' is not a number"),
    (["run", "--lb", "x", "--strategy", "bogus"], "invalid choice: 'bogus'"),
    (["-f", "xml", "inventory"], "invalid choice: 'xml'"),
    (["--backend", "nope:x", "inventory"], "unknown backend 'nope:x'"),
    (["--backend", "fake:", "inventory"], "--backend fake needs a state file"),
    (["--backend", "fake:/tmp/x.json", "--os-cloud", "prod", "inventory"], "either --backend or --os-cloud"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["run", "--lb", "x", "--canary", "-1"], "--canary: '-1' must be 0 or more"),
    (["plan", "--lb", "x", "--max-failures", "two"], "--max-failures: 'two' is not a whole number"),
]


@pytest.mark.parametrize(("args", "expected"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_usage_error_is_one_line_and_exit_2(run_cli: RunCli, args: list[str], expected: str) -> None:
    result = run_cli(args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lbswap: error: ")
    assert expected in lines[0]
    assert result.stdout == ""


def test_global_options_are_accepted_after_the_command(run_cli: RunCli, tmp_path: Path) -> None:
    # `-f json` at the end is the OpenStack-client habit; the backend error proves the option was parsed.
    result = run_cli(["inventory", "--backend", "nope:x", "-f", "json"])
    assert result.returncode == 2
    assert "unknown backend 'nope:x'" in result.stderr


def test_version(run_cli: RunCli) -> None:
    result = run_cli(["--version"])
    assert result.returncode == 0
    assert result.stdout.startswith("lbswap ")


def test_stats_interval_paces_the_drain(run_cli: RunCli, tmp_path: Path) -> None:
    # a 3 s drain deadline: read every 10 s (the default) it ends at its first read; every second, it reads on
    # (three reads without a connection end it, at 2 s at the soonest)
    path = tmp_path / "cloud.json"
    ids = fake.seed_sample(path, 2)
    backend = ["--backend", f"fake:{path}", "--journal", str(tmp_path / "journal.sqlite")]
    drains = []
    for lb, interval in zip(ids, ([], ["--stats-interval", "1"]), strict=True):
        run = run_cli([*backend, "run", "--lb", lb, "--yes", "--drain-timeout", "3", *interval, "-f", "json"])
        assert run.returncode == 0, run.stderr
        drains.append(json.loads(run.stdout)["swaps"][0]["drain"])
    assert drains[0]["seconds"] == 0, drains
    assert 2 <= drains[1]["seconds"] <= 3, drains
