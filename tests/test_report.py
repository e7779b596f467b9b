"""Campaign reports: tenant names escaped in the Markdown, exact in the JSON; private files."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from lbswap import report, textsafe
from tests.test_textsafe import HOSTILE


class _Result:
    def __init__(self, data: dict[str, Any]) -> None:
        self.campaign_id = data["campaign_id"]
        self.data = data

    def to_json(self) -> dict[str, Any]:
        return self.data


def _campaign(names: list[str]) -> dict[str, Any]:
    swaps = [
        {
            "id": f"lb-{i}",
            "name": name,
            "strategy": "fip-swap",
            "state": "failed" if i % 2 else "done",
            "clone_id": f"clone-{i}",
            "flips": [{"floating_ip_address": "203.0.113.10", "at": 1795000000.0}],
            "steps": {"create-clone": {"started": 1795000000.0, "seconds": 31.0}},
            "error": f"load balancer {name}: step flip: went wrong" if i % 2 else None,
            "kubernetes_annotation": None,
        }
        for i, name in enumerate(names)
    ]
    return {"campaign_id": "c-1", "backend": "fake:/tmp/c|1.json", "state": "failed", "swaps": swaps}


def _tables(markdown: str) -> list[list[list[Any]]]:
    """Each table as rows of cells (inline tokens), header row included."""
    tokens = MarkdownIt("commonmark").enable("table").enable("strikethrough").parse(markdown)
    tables: list[list[list[Any]]] = []
    cell = False
    for token in tokens:
        if token.type == "table_open":
            tables.append([])
        elif token.type == "tr_open":
            tables[-1].append([])
        elif token.type in ("th_open", "td_open"):
            cell = True
        elif token.type == "inline" and cell:
            tables[-1][-1].append(token)
            cell = False
    return tables


def _text(cell: Any) -> str:
    return "".join(child.content for child in cell.children or [])


def test_markdown_report_shows_hostile_names_literally() -> None:
    data = _campaign(HOSTILE)
    markdown = report.render_markdown(data)
    tables = _tables(markdown)
    summary = tables[0]
    assert len(summary) == 1 + len(HOSTILE)
    for row, name in zip(summary[1:], HOSTILE, strict=True):
        assert len(row) == 7, "a | in a name must not add a column"
        assert _text(row[0]).startswith(textsafe.shown(name).strip())
        for cell in row:
            kinds = {child.type for child in cell.children or []}
            assert kinds <= {"text", "text_special", "code_inline"}, kinds
    failed = summary[2]
    assert textsafe.shown(HOSTILE[1]) in _text(failed[6])
    assert "\x1b" not in markdown and "\x07" not in markdown and "\u202e" not in markdown
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert len(headings) == len(HOSTILE), "a newline in a name must not start a new block"


def test_the_check_catches_an_unescaped_pipe() -> None:
    markdown = "| a | b |\n|---|---|\n| " + HOSTILE[5] + " | z |\n"
    row = _tables(markdown)[0][1]
    assert _text(row[0]) != HOSTILE[5] and _text(row[1]) != "z"


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)  # the modes below must come from lbswap, not from a strict umask
    try:
        yield
    finally:
        os.umask(old)


def test_report_files_are_private_and_json_is_exact(tmp_path: Path, umask_zero: None) -> None:
    directory = tmp_path / "state" / "reports"
    data = _campaign(HOSTILE)
    md = report.write_report(_Result(data), directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in (md, directory / "c-1.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert json.loads((directory / "c-1.json").read_text()) == data
    assert sorted(p.name for p in directory.iterdir()) == ["c-1.json", "c-1.md"], "no temporary file left"
    report.write_report(_Result(data), directory)  # replacing keeps the mode
    assert stat.S_IMODE(md.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("drain", "line"),
    [
        (
            {"drained": True, "open": 0, "seconds": 42.4, "deadline_seconds": 300.0},
            "Drain: no connection open on the source after 42 s (deadline 300 s).",
        ),
        (
            {"drained": False, "open": 7, "seconds": 300.0, "deadline_seconds": 300.0},
            "Drain: the deadline (300 s) passed with 7 connection(s) open on the source, cut at the retire.",
        ),
        (
            {"drained": False, "open": None, "seconds": 0.0, "deadline_seconds": 0.0},
            "Drain: none (no drain deadline): connections still open on the source were cut at the retire.",
        ),
    ],
)
def test_the_report_says_how_each_drain_ended(drain: dict[str, Any], line: str) -> None:
    data = _campaign(["web"])
    data["swaps"][0]["drain"] = drain
    assert line in report.render_markdown(data).splitlines()
    assert not any(x.startswith("Drain:") for x in report.render_markdown(_campaign(["web"])).splitlines())
