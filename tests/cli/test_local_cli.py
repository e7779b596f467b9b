"""`lbswap local` and `lbswap demo` argument handling that needs no data plane (tier 1)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import RunCli


def test_a_missing_local_cloud_is_one_line_and_exit_2(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(["--backend", f"local:{tmp_path / 'nowhere'}", "inventory"])
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "no local cloud in" in result.stderr and "lbswap local up" in result.stderr


def test_local_status_of_a_cloud_that_is_not_up(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(["--backend", f"local:{tmp_path / 'nowhere'}", "local", "status", "-f", "json"])
    assert result.returncode == 0, result.stderr
    assert '"up": false' in result.stdout


def test_bad_local_and_demo_arguments(run_cli: RunCli) -> None:
    for args in (["local", "sideways"], ["local", "up", "--boot-seconds", "-1"], ["demo", "--rate", "x"]):
        result = run_cli(args)
        assert result.returncode == 2, args
        assert result.stderr.startswith("lbswap: error:"), result.stderr
