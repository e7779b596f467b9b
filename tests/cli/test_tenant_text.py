"""Load balancer names are tenant text: through every command and format they are shown, never interpreted.

Real `lbswap` processes against a fake cloud whose load balancers carry hostile names. Tables, progress and
error lines show them escaped (no rich markup, no link, no escape sequence reaches the terminal); JSON and
YAML keep the exact strings; the Markdown report escapes them.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbswap.cli.progress import ProgressView
from lbswap.clouds import fake
from lbswap.textsafe import shown
from tests.conftest import RunCli

HOSTILE = [
    "oops[/red]",
    "[link=http://example.invalid]x[/link]",
    "\x1b[31mred\x1b[0m",
    "bell\x07",
    "two\nlines",
    "| pipe *md*",
]
WIDE = {"COLUMNS": "400"}  # no folding: a shown name appears whole in a table cell


@pytest.fixture
def hostile(tmp_path: Path, run_cli: RunCli) -> list[str]:
    """A fake cloud of six fip-swap load balancers named HOSTILE; the --backend/--journal options."""
    path = tmp_path / "cloud.json"
    assert run_cli(["fake", "seed", str(path), "--sample", str(len(HOSTILE))]).returncode == 0

    def rename(state: dict[str, Any]) -> None:
        for lb, name in zip(sorted(state["lbs"].values(), key=lambda lb: lb["name"]), HOSTILE, strict=True):
            lb["name"] = name

    fake.FakeCloud(path).mutate(rename)
    return ["--backend", f"fake:{path}", "--journal", str(tmp_path / "journal.sqlite")]


def _clean(result: subprocess.CompletedProcess[str], *, terminal: bool = False) -> None:
    """No traceback, no markup error, and nothing of a hostile name sent to the terminal as control."""
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream and "MarkupError" not in stream, stream
        assert "\x07" not in stream and "\x1b[31mred" not in stream and "\x1b]8;" not in stream, stream
        if not terminal:
            assert "\x1b" not in stream, stream


def _parse(fmt: str, text: str) -> Any:
    return json.loads(text) if fmt == "json" else yaml.safe_load(text)


def _names(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(row["name"] for row in rows)


def _table_shows_every_name(stdout: str) -> None:
    for name in HOSTILE:
        assert shown(name) in stdout, (name, stdout)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_data_formats_keep_the_exact_names(run_cli: RunCli, hostile: list[str], fmt: str) -> None:
    inventory = run_cli([*hostile, "inventory", "-f", fmt])
    assert inventory.returncode == 0, inventory.stderr
    _clean(inventory)
    assert _names(_parse(fmt, inventory.stdout)) == sorted(HOSTILE)

    plan = run_cli([*hostile, "plan", "--all", "-f", fmt])
    assert plan.returncode == 0, plan.stderr
    _clean(plan)
    assert _names(_parse(fmt, plan.stdout)) == sorted(HOSTILE)

    run = run_cli([*hostile, "run", "--all", "--yes", "--drain-timeout", "0", "-f", fmt])
    assert run.returncode == 0, run.stderr
    _clean(run)
    campaign = _parse(fmt, run.stdout)
    assert _names(campaign["swaps"]) == sorted(HOSTILE)
    assert {s["state"] for s in campaign["swaps"]} == {"done"}

    status = run_cli([*hostile, "status", campaign["campaign_id"], "-f", fmt])
    assert status.returncode == 0, status.stderr
    _clean(status)
    (again,) = _parse(fmt, status.stdout)
    assert _names(again["swaps"]) == sorted(HOSTILE)

    report = run_cli([*hostile, "report", campaign["campaign_id"], "-f", fmt])
    assert report.returncode == 0, report.stderr
    _clean(report)
    written = json.loads(Path(_parse(fmt, report.stdout)["json"]).read_text())
    assert _names(written["swaps"]) == sorted(HOSTILE)


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "FORCE_COLOR"])
def test_tables_and_progress_show_names_escaped(run_cli: RunCli, hostile: list[str], terminal: bool) -> None:
    env = {**WIDE, **({"FORCE_COLOR": "1"} if terminal else {})}
    inventory = run_cli([*hostile, "inventory"], env=env)
    assert inventory.returncode == 0, inventory.stderr
    _clean(inventory, terminal=terminal)
    _table_shows_every_name(inventory.stdout)

    plan = run_cli([*hostile, "plan", "--all"], env=env)
    assert plan.returncode == 0, plan.stderr
    _clean(plan, terminal=terminal)
    _table_shows_every_name(plan.stdout)

    run = run_cli([*hostile, "run", "--all", "--yes", "--drain-timeout", "0"], env=env)
    assert run.returncode == 0, run.stderr
    _clean(run, terminal=terminal)
    _table_shows_every_name(run.stdout)
    for name in HOSTILE:  # the plain progress lines on stderr
        assert f" {shown(name)} flip done" in run.stderr, run.stderr

    status = run_cli([*hostile, "status"], env=env)
    assert status.returncode == 0, status.stderr
    _clean(status, terminal=terminal)
    _table_shows_every_name(status.stdout)


def test_error_lines_show_names_escaped(run_cli: RunCli, hostile: list[str]) -> None:
    # a name the selection does not know is quoted back on stderr; a JSON reader gets it exactly
    wanted = "nope\x1b[31m[/red]\x07"
    table = run_cli([*hostile, "run", "--lb", wanted, "--yes"])
    assert table.returncode == 2
    _clean(table)
    assert len(table.stderr.strip().splitlines()) == 1 and "nope\\x1b[31m[/red]\\x07" in table.stderr
    as_json = run_cli([*hostile, "run", "--lb", wanted, "--yes", "-f", "json"])
    assert as_json.returncode == 2
    _clean(as_json)
    document = json.loads(as_json.stdout)
    assert document["exit_code"] == 2 and "no load balancer has the id or name 'nope" in document["error"]


def test_markdown_report_escapes_names(run_cli: RunCli, hostile: list[str]) -> None:
    run = run_cli([*hostile, "run", "--all", "--yes", "--drain-timeout", "0", "-f", "json"])
    assert run.returncode == 0, run.stderr
    campaign = json.loads(run.stdout)["campaign_id"]
    report = run_cli([*hostile, "report", campaign])
    assert report.returncode == 0, report.stderr
    markdown = Path(report.stdout.strip()).read_text()
    assert "\x1b" not in markdown and "\x07" not in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "fip-swap" in line]
    assert len(rows) == len(HOSTILE)
    assert all(len(re.findall(r"(?<!\\)\|", row)) == 8 for row in rows), rows  # 7 cells
    assert "\\| pipe \\*md\\*" in markdown and "oops\\[/red\\]" in markdown


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Event:
    def __init__(self, name: str, status: str, message: str = "") -> None:
        self.lb_id, self.lb_name, self.step, self.status, self.message = "lb-1", name, "flip", status, message


@pytest.mark.parametrize("name", HOSTILE)
def test_live_progress_shows_names_escaped(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    stream = _Terminal()
    with ProgressView([], stream=stream) as view:
        assert view.live is not None, "the live display is what this test covers"
        view(_Event(name, "start"))
        view(_Event(name, "failed", f"load balancer {name}: went wrong"))
    out = stream.getvalue()
    assert shown(name) in out
    assert "\x1b]8;" not in out and "\x07" not in out and "\x1b[31mred" not in out
