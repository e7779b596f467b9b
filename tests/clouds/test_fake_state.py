"""The fake's state file as operators meet it: its identity, broken files, overwrites, and read faults."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lbswap.clouds import fake
from tests.conftest import RunCli


def test_each_seed_is_a_new_cloud_and_a_copy_is_the_same_cloud(tmp_path: Path) -> None:
    fake.seed_sample(tmp_path / "a.json", 2)
    fake.seed_sample(tmp_path / "b.json", 2)
    shutil.copy(tmp_path / "a.json", tmp_path / "copy.json")
    a, b, copy = (fake.FakeCloud(tmp_path / n).identity() for n in ("a.json", "b.json", "copy.json"))
    assert a.startswith("fake:") and len(a) > len("fake:") + 16
    assert a != b, "two seeds are two clouds, even with the same content"
    assert a == copy, "the identity is in the file, not its path"
    fake.seed_sample(tmp_path / "a.json", 2)
    assert fake.FakeCloud(tmp_path / "a.json").identity() != a, "a new seed replaces the cloud"


def test_a_state_file_without_an_identity_gets_one_that_stays(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    fake.seed_sample(path, 2)
    state = json.loads(path.read_text())
    del state["cloud_id"]
    path.write_text(json.dumps(state))
    (tmp_path / "old.json.gen").unlink()
    first = fake.FakeCloud(path).identity()
    assert first.startswith("fake:") and first != "fake:None"
    assert fake.FakeCloud(path).identity() == first, "another process must see the same identity"
    assert json.loads(path.read_text())["cloud_id"] == first.removeprefix("fake:")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("[]", "a JSON list"),
        ("{}", "state version None"),
        ('{"version": 1}', "no 'clock'"),
        ('{"version": 1, "clock": 1800000000.0, "seq": ', "not JSON"),
        ('{"version": 2}', "state version 2, expected 1"),
    ],
)
def test_a_file_that_is_not_a_state_file_is_one_line_and_exit_2(
    tmp_path: Path, run_cli: RunCli, content: str, why: str
) -> None:
    path = tmp_path / "cloud.json"
    path.write_text(content)
    for args in (["--backend", f"fake:{path}", "inventory"], ["fake", "faults", str(path), "--latency", "1"]):
        out = run_cli(args)
        assert out.returncode == 2, out.stderr
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
        assert str(path) in out.stderr and why in out.stderr and "--force" in out.stderr
    truncated = tmp_path / "truncated.json"
    fake.seed_sample(truncated, 3)
    truncated.write_text(truncated.read_text()[:500])
    out = run_cli(["--backend", f"fake:{truncated}", "plan", "--all"])
    assert out.returncode == 2 and "not JSON" in out.stderr and out.stderr.count("\n") == 1, out.stderr


def test_a_directory_is_not_a_state_file(tmp_path: Path, run_cli: RunCli) -> None:
    path = tmp_path / "cloud.json"
    path.mkdir()
    out = run_cli(["--backend", f"fake:{path}", "inventory"])
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert f"{path} is a directory" in out.stderr and "fake:FILE" in out.stderr


def test_seed_refuses_to_replace_a_cloud_without_force(tmp_path: Path, run_cli: RunCli) -> None:
    path = tmp_path / "cloud.json"
    assert run_cli(["fake", "seed", str(path), "--sample", "2"]).returncode == 0
    before = fake.FakeCloud(path).identity()
    out = run_cli(["fake", "seed", str(path), "--sample", "5"])
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert str(path) in out.stderr and "--force" in out.stderr
    assert fake.FakeCloud(path).identity() == before and len(fake.FakeCloud(path).list_load_balancers()) == 2
    out = run_cli(["fake", "seed", str(path), "--sample", "5", "--force"])
    assert out.returncode == 0, out.stderr
    assert fake.FakeCloud(path).identity() != before and len(fake.FakeCloud(path).list_load_balancers()) == 5


@pytest.mark.parametrize("probability", ["-0.1", "1.5", "nan", "inf"])
def test_faults_refuse_a_probability_outside_0_1(tmp_path: Path, run_cli: RunCli, probability: str) -> None:
    path = tmp_path / "cloud.json"
    fake.seed_sample(path, 1)
    out = run_cli(["fake", "faults", str(path), "--fail-probability", probability])
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert "probability" in out.stderr
    assert fake.FakeCloud(path).snapshot_state()["faults"] == {}, "nothing was changed"
    assert run_cli(["fake", "faults", str(path), "--fail-probability", "1"]).returncode == 0
