"""Operator-facing output: one document on stdout with -f json|yaml (also on errors), finite numbers only,
`status` that leads with counts and failures, and `rollback`'s exit code."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbswap import cli
from lbswap.cli import campaign_actions, campaign_render
from lbswap.clouds import fake
from lbswap.errors import LbswapError
from tests.conftest import RunCli


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- one document on stdout, also on errors -----------------------------------------------------------------

ERRORS = [
    (["run", "--lb", "x", "--keep-source", "inf"], 2, "'inf' is not a finite number"),
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    ([], 2, "give a command"),
    (["--backend", "fake:/nonexistent/cloud.json", "inventory"], 2, "no simulated cloud at"),
]


@pytest.mark.parametrize("where", ["--format=json", "-fjson", "-f json", "--format json"])
@pytest.mark.parametrize(("argv", "code", "expected"), ERRORS, ids=[" ".join(a) or "no command" for a, _, _ in ERRORS])
def test_json_errors_are_one_document(run_cli: RunCli, argv: list[str], code: int, expected: str, where: str) -> None:
    result = run_cli([*where.split(), *argv])
    assert result.returncode == code
    assert expected in _one_line(result.stderr)
    assert json.loads(result.stdout) == {"error": json.loads(result.stdout)["error"], "exit_code": code}
    assert expected in json.loads(result.stdout)["error"]


def test_yaml_errors_are_one_document(run_cli: RunCli) -> None:
    result = run_cli(["run", "--lb", "x", "--drain-timeout", "nan", "-f", "yaml"])
    assert result.returncode == 2
    _one_line(result.stderr)
    document = yaml.safe_load(result.stdout)
    assert document["exit_code"] == 2 and "'nan' is not a finite number" in document["error"]


def test_table_errors_leave_stdout_empty(run_cli: RunCli) -> None:
    result = run_cli(["run", "--lb", "x", "--keep-source", "inf"])
    assert result.returncode == 2 and result.stdout == ""
    _one_line(result.stderr)


def _handler_raising(exc: BaseException, *, emit_first: bool = False) -> Any:
    """Stands for the `status` command's handler (what the cliff command class calls)."""

    def handler(args: argparse.Namespace) -> int:
        if emit_first:
            cli.emit({"campaign_id": "c-1"}, args.format)
        raise exc

    return handler


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_an_interrupt_is_one_document_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    monkeypatch.setattr(campaign_actions, "cmd_status", _handler_raising(KeyboardInterrupt()))
    assert cli.main(["status", "-f", fmt]) == 130
    out, err = capsys.readouterr()
    document = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert document["exit_code"] == 130 and "lbswap resume" in document["error"]
    assert "interrupted" in _one_line(err)


def test_an_error_after_the_document_adds_no_second_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(campaign_actions, "cmd_status", _handler_raising(LbswapError("late"), emit_first=True))
    assert cli.main(["status", "-f", "json"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == {"campaign_id": "c-1"}
    assert _one_line(err) == "lbswap: error: late"


def test_an_internal_error_still_gives_a_json_reader_its_document(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(campaign_actions, "cmd_status", _handler_raising(KeyError("x")))
    with pytest.raises(KeyError):  # a defect keeps its traceback
        cli.main(["status", "-f", "json"])
    document = json.loads(capsys.readouterr().out)
    assert document["exit_code"] == 1 and "KeyError" in document["error"]


# --- finite numbers ------------------------------------------------------------------------------------------

NUMBERS = [
    (["run", "--lb", "x", "--keep-source", "inf"], "--keep-source: 'inf' is not a finite number"),
    (["run", "--lb", "x", "--keep-source", "Infinity"], "--keep-source: 'Infinity' is not a finite number"),
    (["plan", "--lb", "x", "--drain-timeout", "nan"], "--drain-timeout: 'nan' is not a finite number"),
    (["run", "--lb", "x", "--drain-timeout=-inf"], "--drain-timeout: '-inf' is not a finite number"),
    (["fake", "faults", "c.json", "--fail-probability", "1.5"], "--fail-probability: '1.5' must be between 0 and 1"),
    (["fake", "faults", "c.json", "--fail-probability=-0.1"], "'-0.1' must be between 0 and 1"),
    (["fake", "faults", "c.json", "--fail-probability", "nan"], "'nan' is not a finite number"),
    (["fake", "faults", "c.json", "--drain-seconds", "inf"], "--drain-seconds: 'inf' is not a finite number"),
    (["fake", "faults", "c.json", "--latency", "inf"], "--latency: 'inf' is not a finite number"),
    (["demo", "--rate", "nan"], "--rate: 'nan' is not a finite number"),
]


@pytest.mark.parametrize(("argv", "expected"), NUMBERS, ids=[" ".join(a[-2:]) for a, _ in NUMBERS])
def test_numbers_must_be_finite(run_cli: RunCli, argv: list[str], expected: str) -> None:
    result = run_cli(argv)
    assert result.returncode == 2
    assert expected in _one_line(result.stderr)


def test_probability_bounds_are_accepted(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    assert run_cli(["fake", "seed", str(path), "--sample", "1"]).returncode == 0
    for p in ("0", "1", "0.25"):
        result = run_cli(["fake", "faults", str(path), "--fail-probability", p])
        assert result.returncode == 0, result.stderr
    assert fake.FakeCloud(path).snapshot_state()["faults"]["fail_probability"] == 0.25


# --- status: counts first, failures first, skips collapsed ---------------------------------------------------


def _swap(i: int, state: str) -> dict[str, Any]:
    error = {"failed": "went to ERROR", "rolled_back": "rolled back", "skipped": None}.get(state)
    if state == "skipped":
        error = "not started: the canary failed; nothing was changed on it"
    return {"id": f"lb-{i}", "name": f"web-{i:03}", "strategy": "fip-swap", "state": state, "clone_id": None,
            "flips": [], "error": error}  # fmt: skip


def _campaign(states: list[str]) -> dict[str, Any]:
    swaps = [_swap(i, s) for i, s in enumerate(states)]
    return {"campaign_id": "c-1", "state": "failed", "backend": "fake:x", "swaps": swaps,
            "counts": campaign_render.counts(swaps)}  # fmt: skip


STATES = ["done", "done", "failed", *["skipped"] * 40, "rolled_back", "pending", "kept", "running"]


def test_status_leads_with_counts_then_failures_and_collapses_skips(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    campaign_render.campaign_tables([_campaign(STATES)], argparse.Namespace(command="status", show_skipped=False))
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == (
        "campaign c-1: 47 load balancer(s): done 2, running 1, kept 1, rolled_back 1, failed 1, skipped 40, pending 1"
    )
    rows = [line for line in lines if line.startswith("│")]
    assert [r.split("│")[2].strip() for r in rows] == ["web-002", "web-043", "web-000", "web-001", "web-044",
                                                         "web-045", "web-046"]  # fmt: skip
    assert "web-010" not in out
    assert (
        lines[-1]
        == "40 skipped: not started: the canary failed; nothing was changed on them (--show-skipped lists them)"
    )
    assert len(lines) < 30


def test_show_skipped_lists_every_swap(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    campaign_render.campaign_tables([_campaign(STATES)], argparse.Namespace(command="status", show_skipped=True))
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if line.startswith("│")]) == len(STATES)
    assert "lists them" not in out


@pytest.fixture
def canary_failed(tmp_path: Path, run_cli: RunCli) -> tuple[list[str], str, dict[str, Any]]:
    """A campaign of 4: the canary's clone went to ERROR (rolled back), the other 3 skipped."""
    path = tmp_path / "cloud.json"
    assert run_cli(["fake", "seed", str(path), "--sample", "4"]).returncode == 0
    assert run_cli(["fake", "faults", str(path), "--fail-at", "1", "--fail-kind", "error-status"]).returncode == 0
    backend = ["--backend", f"fake:{path}", "--journal", str(tmp_path / "journal.sqlite")]
    run = run_cli([*backend, "run", "--all", "--yes", "--drain-timeout", "0", "-f", "json"])
    assert run.returncode == 1, run.stderr
    campaign = json.loads(run.stdout)
    assert [s["state"] for s in campaign["swaps"]] == ["rolled_back", "skipped", "skipped", "skipped"]
    return backend, campaign["campaign_id"], campaign


def test_status_command(run_cli: RunCli, canary_failed: tuple[list[str], str, dict[str, Any]]) -> None:
    backend, campaign_id, campaign = canary_failed
    assert campaign["counts"] == {"done": 0, "running": 0, "kept": 0, "rolled_back": 1, "failed": 0,
                                  "skipped": 3, "pending": 0}  # fmt: skip
    table = run_cli([*backend, "status", campaign_id], env={"COLUMNS": "300"})
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith(f"campaign {campaign_id}: 4 load balancer(s): done 0,")
    assert table.stdout.rstrip().splitlines()[-1].startswith("3 skipped: not started")
    assert table.stdout.count("│ skipped") == 0
    every = run_cli([*backend, "status", campaign_id, "--show-skipped"], env={"COLUMNS": "300"})
    assert every.stdout.count("│ skipped") == 3
    as_json = run_cli([*backend, "status", campaign_id, "-f", "json"])
    (document,) = json.loads(as_json.stdout)
    assert len(document["swaps"]) == 4 and document["counts"]["skipped"] == 3


# --- rollback's exit code ------------------------------------------------------------------------------------


def test_rollback_exit_code(run_cli: RunCli, canary_failed: tuple[list[str], str, dict[str, Any]]) -> None:
    backend, campaign_id, _ = canary_failed
    # the skipped ones were never started: rolling them back succeeds at once
    everything = run_cli([*backend, "rollback", campaign_id, "-f", "json"])
    assert everything.returncode == 0, everything.stderr
    assert {s["state"] for s in json.loads(everything.stdout)["swaps"]} == {"rolled_back"}


def test_rollback_of_a_done_swap_exits_1(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "cloud.json"
    assert run_cli(["fake", "seed", str(path), "--sample", "2"]).returncode == 0
    backend = ["--backend", f"fake:{path}", "--journal", str(tmp_path / "journal.sqlite")]
    run = run_cli([*backend, "run", "--all", "--yes", "--drain-timeout", "0", "-f", "json"])
    assert run.returncode == 0, run.stderr
    campaign = json.loads(run.stdout)
    first = campaign["swaps"][0]["id"]
    refused = run_cli([*backend, "rollback", campaign["campaign_id"], "--lb", first, "-f", "json"])
    assert refused.returncode == 1, refused.stderr
    swap = next(s for s in json.loads(refused.stdout)["swaps"] if s["id"] == first)
    assert swap["state"] == "done" and "past its point of no return" in swap["error"]
    nothing_to_do = run_cli([*backend, "rollback", campaign["campaign_id"]])
    assert nothing_to_do.returncode == 0, nothing_to_do.stderr


def test_report_command_output(run_cli: RunCli, canary_failed: tuple[list[str], str, dict[str, Any]]) -> None:
    backend, campaign_id, _ = canary_failed
    as_json = run_cli([*backend, "report", campaign_id, "-f", "json"])
    assert as_json.returncode == 0, as_json.stderr
    paths = json.loads(as_json.stdout)
    assert (
        Path(paths["markdown"]).exists() and json.loads(Path(paths["json"]).read_text())["campaign_id"] == campaign_id
    )
    unwritable = run_cli([*backend, "report", campaign_id, "-o", "/proc/lbswap-reports", "-f", "json"])
    assert unwritable.returncode == 2
    assert "cannot write the report to /proc/lbswap-reports" in _one_line(unwritable.stderr)
    assert json.loads(unwritable.stdout)["exit_code"] == 2


def test_snapshot_to_a_file_still_gives_json_its_document(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "cloud.json"
    assert run_cli(["fake", "seed", str(path), "--sample", "2"]).returncode == 0
    out = tmp_path / "snap.json"
    result = run_cli(["--backend", f"fake:{path}", "snapshot", "-o", str(out), "-f", "json"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"output": str(out), "load_balancers": 2}


def test_log_lines_show_tenant_text() -> None:
    record = logging.LogRecord("lbswap", logging.WARNING, __file__, 1, "clone of %s left", ("\x1b[31mred\n",), None)
    line = cli._ShownFormatter("%(levelname)s %(message)s").format(record)
    assert line == "WARNING clone of \\x1b[31mred\\n left"
