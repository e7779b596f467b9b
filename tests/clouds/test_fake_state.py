"""The fake's state file as operators meet it: its identity, broken files, overwrites, and read faults."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lbswap.clouds import fake
from lbswap.errors import CloudError
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


def _read_outcomes(cloud: fake.FakeCloud, lb_id: str, n: int) -> list[int | None]:
    outcomes: list[int | None] = []
    for _ in range(n):
        try:
            cloud.get_load_balancer(lb_id)
            outcomes.append(None)
        except CloudError as exc:
            outcomes.append(exc.status_code)
    return outcomes


def test_read_faults_fail_reads_with_503_at_the_seeded_rate(tmp_path: Path) -> None:
    path = tmp_path / "cloud.json"
    lb_id = fake.seed_sample(path, 2)[0]
    cloud = fake.FakeCloud(path)
    fake.set_faults(path, read_error_probability=0.3, seed=7)
    first = _read_outcomes(cloud, lb_id, 400)
    assert set(first) == {None, 503}
    assert 0.2 < first.count(503) / len(first) < 0.4
    fake.set_faults(path, read_error_probability=0.3, seed=7)
    assert _read_outcomes(cloud, lb_id, 400) == first, "the same seed fails the same calls"
    fake.set_faults(path, read_error_probability=0.3, seed=8)
    assert _read_outcomes(cloud, lb_id, 400) != first
    fake.clear_faults(path)
    assert _read_outcomes(cloud, lb_id, 50) == [None] * 50


def test_read_faults_never_fail_a_side_effect(tmp_path: Path) -> None:
    path = tmp_path / "cloud.json"
    lb_id = fake.seed_sample(path, 2)[0]
    cloud = fake.FakeCloud(path)
    fake.set_faults(path, read_error_probability=1.0)
    with pytest.raises(CloudError) as err:
        cloud.list_floating_ips()
    assert err.value.status_code == 503 and err.value.request_id
    cloud.failover_load_balancer(lb_id)
    assert cloud.snapshot_state()["lbs"][lb_id]["provisioning_status"] == "PENDING_UPDATE"


def test_fail_reads_through_the_cli(tmp_path: Path, run_cli: RunCli) -> None:
    path = tmp_path / "cloud.json"
    fake.seed_sample(path, 2)
    out = run_cli(["fake", "faults", str(path), "--fail-reads", "1.5"])
    assert out.returncode == 2 and "--fail-reads" in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert run_cli(["fake", "faults", str(path), "--fail-reads", "1"]).returncode == 0
    assert fake.FakeCloud(path).snapshot_state()["faults"]["read_error_probability"] == 1.0
    out = run_cli(["--backend", f"fake:{path}", "inventory"])
    assert out.returncode != 0 and "503" in out.stderr, out.stderr
    assert run_cli(["fake", "faults", str(path), "--clear"]).returncode == 0
    assert run_cli(["--backend", f"fake:{path}", "inventory"]).returncode == 0
