"""Usage errors: one line on stderr, exit 2, before any cloud is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunCli

CASES = [
    (["run", "--lb", "x", "--parallel", "0"], "--parallel: '0' must be 1 or more"),
    (["run", "--lb", "x", "--drain-timeout", "-5"], "--drain-timeout: '-5' must be 0 or more"),
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
