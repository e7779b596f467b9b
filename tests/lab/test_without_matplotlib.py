"""matplotlib is the `lab` extra: the core imports and runs a campaign without it, and `lbswap demo` says in
one line how to install it, then runs without the PNG timeline."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from lbswap import cli
from tests.conftest import SRC

# every module of lbswap imported, then a rehearsal on the fake run end to end, with matplotlib unimportable
WITHOUT_MATPLOTLIB = """
import importlib, importlib.abc, json, pkgutil, sys

class NoMatplotlib(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "matplotlib":
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

sys.meta_path.insert(0, NoMatplotlib())
try:
    import matplotlib
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("the blocker let matplotlib in")

import lbswap
# the local cloud's compute driver is loaded by Octavia in the cloud's own virtualenv, not in lbswap's
OUTSIDE = ("lbswap.localcloud.compute",)
modules = sorted(
    m.name
    for m in pkgutil.walk_packages(lbswap.__path__, "lbswap.")
    if not m.name.endswith("__main__") and not m.name.startswith(OUTSIDE)
)
for name in modules:
    importlib.import_module(name)

from lbswap import cli
from lbswap.lab import timeline

cloud, journal = sys.argv[1], sys.argv[2]
seeded = cli.main(["fake", "seed", cloud, "--sample", "2", "-f", "json"])
ran = cli.main(["--backend", f"fake:{cloud}", "--journal", journal, "run", "--all", "--yes", "-f", "json"])
print(json.dumps({"modules": modules, "exit_codes": [seeded, ran], "timeline": timeline.available(),
                  "loaded": sorted(m for m in sys.modules if m.partition(".")[0] == "matplotlib")}))
"""


def test_the_core_imports_and_runs_a_campaign_without_matplotlib(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_MATPLOTLIB, str(tmp_path / "cloud.json"), str(tmp_path / "journal.sqlite")],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "XDG_STATE_HOME": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for wanted in ("lbswap.cli.app", "lbswap.cli.campaign", "lbswap.workflow.runner", "lbswap.lab.demo"):
        assert wanted in found["modules"]
    assert found["exit_codes"] == [0, 0], result.stderr
    assert found["timeline"] is False and found["loaded"] == []


class _FakeDemo:
    """Stands for :func:`lbswap.lab.demo.run_demo` (which needs root and the local cloud)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, state_dir: str | None, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        png = "/tmp/demo-timeline.png" if kwargs["timeline"] else None
        return {"results": [], "report": "/tmp/demo.json", "timeline": png, "rebuild_window_seconds": 3.0}


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch) -> _FakeDemo:
    from lbswap.lab import demo as demo_mod

    fake = _FakeDemo()
    monkeypatch.setattr(demo_mod, "run_demo", fake)
    monkeypatch.setenv("COLUMNS", "200")
    return fake


def test_the_demo_without_matplotlib_says_how_to_install_it_and_runs_without_the_png(
    demo: _FakeDemo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    assert cli.main(["demo", "--state-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert [call["timeline"] for call in demo.calls] == [False]
    (line,) = err.splitlines()
    assert line == "lbswap: warning: no PNG timeline without matplotlib: pip install 'lbswap[lab]' adds it"
    assert out.splitlines()[-1] == "timeline: none (pip install 'lbswap[lab]' for the PNG)"


def test_the_demo_with_matplotlib_draws_the_timeline(
    demo: _FakeDemo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", types.ModuleType("matplotlib"))
    assert cli.main(["demo", "--state-dir", str(tmp_path), "-f", "json"]) == 0
    out, err = capsys.readouterr()
    assert [call["timeline"] for call in demo.calls] == [True]
    assert err == "" and json.loads(out)["timeline"] == "/tmp/demo-timeline.png"
