"""The fake's state file as operators meet it: its identity, broken files, overwrites, and read faults."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lbswap import clone
from lbswap.clouds import fake
from lbswap.errors import CloudError
from tests.conftest import SRC, RunCli


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
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM meta WHERE key = 'cloud_id'")
    first = fake.FakeCloud(path).identity()
    assert first.startswith("fake:") and first != "fake:None"
    assert fake.FakeCloud(path).identity() == first, "another process must see the same identity"
    assert fake.FakeCloud(path).snapshot_state()["cloud_id"] == first.removeprefix("fake:")


@pytest.mark.parametrize(
    "content",
    ["[]", "{}", '{"version": 1}', '{"version": 1, "clock": 1800000000.0, "seq": ', "\x00\x01 not text"],
)
def test_a_file_that_is_not_a_state_file_is_one_line_and_exit_2(tmp_path: Path, run_cli: RunCli, content: str) -> None:
    path = tmp_path / "cloud.json"
    path.write_text(content)
    for args in (["--backend", f"fake:{path}", "inventory"], ["fake", "faults", str(path), "--latency", "1"]):
        out = run_cli(args)
        assert out.returncode == 2, out.stderr
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
        assert str(path) in out.stderr and "not an SQLite database" in out.stderr and "--force" in out.stderr
    assert path.read_text() == content, "a file that is not a cloud is left alone"


def _sql(path: Path, statement: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute(statement)


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:3000]), "malformed"),
        (lambda p: _sql(p, "UPDATE meta SET value = '1' WHERE key = 'version'"), "state version 1, expected 2"),
        (lambda p: _sql(p, "DELETE FROM meta WHERE key = 'version'"), "state version None"),
        (lambda p: _sql(p, "DROP TABLE meta"), "without the simulator's tables"),
        (lambda p: p.write_bytes(b""), "without the simulator's tables"),
    ],
)
def test_a_damaged_state_file_is_one_line_and_exit_2(
    tmp_path: Path, run_cli: RunCli, damage: Callable[[Path], None], why: str
) -> None:
    path = tmp_path / "cloud.json"
    fake.seed_sample(path, 3)
    damage(path)
    out = run_cli(["--backend", f"fake:{path}", "plan", "--all"])
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert str(path) in out.stderr and why in out.stderr and "--force" in out.stderr, out.stderr


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


def _statements_for_one_swap(path: Path, n: int) -> list[str]:
    """The SQL a swap's calls on the first load balancer run, on a cloud of ``n`` load balancers."""
    fake.seed_sample(path, n, seed=5)
    cloud = fake.FakeCloud(path)
    source_id = cloud.list_load_balancers()[0].id
    statements: list[str] = []
    assert cloud._db is not None
    cloud._db.set_trace_callback(statements.append)
    source = cloud.read_graph(source_id)
    made = cloud.create_load_balancer(clone.build_clone_body(source, campaign_id="c"))
    cloud.clock.sleep(5)
    clone_lb = cloud.get_load_balancer(made.id)
    fip = cloud.list_floating_ips(port_id=source.vip_port_id)[0]
    cloud.move_floating_ip(fip.id, port_id=clone_lb.vip_port_id, fixed_ip_address=None, if_revision=1)
    cloud.get_stats(source_id)
    cloud.delete_load_balancer(source_id)
    cloud.clock.sleep(5)
    cloud.get_quota(source.project_id or "")
    cloud._db.set_trace_callback(None)
    return statements


def test_a_call_touches_the_same_records_whatever_the_size_of_the_cloud(tmp_path: Path) -> None:
    small = _statements_for_one_swap(tmp_path / "small.json", 3)
    large = _statements_for_one_swap(tmp_path / "large.json", 150)
    assert len(small) == len(large) and len(small) < 400, (len(small), len(large))
    assert not [s for s in large if "ORDER BY rowid" in s and "due" not in s], "no full scan"


def test_a_listing_by_tag_and_a_probe_read_only_their_records_also_in_a_file_from_before_those_indexes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cloud.sqlite"
    fake.seed_sample(path, 20, seed=5)
    cloud = fake.FakeCloud(path)
    source = cloud.read_graph(cloud.list_load_balancers()[0].id)
    made = cloud.create_load_balancer(clone.build_clone_body(source, campaign_id="c"))
    cloud.clock.sleep(5)
    tags = clone.marker_tags(source.id, "c")
    statements: list[str] = []
    assert cloud._db is not None
    cloud._db.set_trace_callback(statements.append)
    assert [lb.id for lb in cloud.list_load_balancers(tags=tags[::-1])] == [made.id]
    assert cloud.probe_listener(source.floating_ips[0].floating_ip_address, 80, "HTTP").ok
    cloud._db.set_trace_callback(None)
    scans = [s for s in statements if "ORDER BY rowid" in s and "idx" not in s and "due" not in s]
    assert statements and not scans, scans
    cloud.close()
    db = sqlite3.connect(path)  # as an older lbswap wrote it: no tag or address keys
    db.execute("DELETE FROM idx WHERE name IN ('lb.tag', 'fip.address')")
    db.execute("DELETE FROM meta WHERE key = 'indexes'")
    db.commit()
    db.close()
    again = fake.FakeCloud(path)
    assert [lb.id for lb in again.list_load_balancers(tags=tags)] == [made.id]
    assert again.probe_listener(source.floating_ips[0].floating_ip_address, 80, "HTTP").ok


def test_several_processes_share_one_cloud_without_losing_a_change(tmp_path: Path) -> None:
    path = tmp_path / "cloud.json"
    fake.seed_sample(path, 3)
    cloud = fake.FakeCloud(path)
    port = cloud.list_load_balancers()[0].vip_port_id
    calls_before = cloud.snapshot_state()["calls"]
    code = (
        "import sys; from lbswap.clouds.fake import FakeCloud; c = FakeCloud(sys.argv[1])\n"
        "for i in range(60):\n"
        "    c.create_floating_ip(floating_network_id='public', port_id=sys.argv[2], tags=['t'])\n"
        "    c.clock.sleep(1)\n"
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", code, str(path), port], env={**os.environ, "PYTHONPATH": str(SRC)})
        for _ in range(3)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]
    state = cloud.snapshot_state()
    assert state["side_effects"] == 180 and state["calls"] == calls_before + 180
    assert sorted(a["n"] for a in state["audit"]) == list(range(1, 181))
    assert len([f for f in state["fips"].values() if f["tags"] == ["t"]]) == 180
    assert state["clock"] == 1_800_000_000.0 + 180, "every process's sleep advanced the one clock"


def test_an_additional_vip_is_an_indexed_fixed_ip_on_the_main_port_and_is_released_with_it(tmp_path: Path) -> None:
    path = tmp_path / "cloud.db"
    fake.seed_sample(path, 3)
    cloud = fake.FakeCloud(path)
    cloud.mutate(
        lambda s: s["subnets"].update(
            {"subnet-v6": {"network_id": "net-tenant", "cidr": "2001:db8::/64", "capacity": 100, "reserved": 0}}
        )
    )
    source = cloud.read_graph(cloud.list_load_balancers()[0].id)
    body = clone.build_clone_body(source, campaign_id="c")
    body["additional_vips"] = [{"subnet_id": "subnet-v6"}]
    first = cloud.create_load_balancer(body)
    graph = cloud.read_graph(first.id)
    assert [(v.ip_address, v.port_id) for v in graph.additional_vips] == [("2001:db8::2", first.vip_port_id)]
    assert cloud.subnet_free_addresses("subnet-v6") == 99, "the extra fixed IP counts on its subnet"
    assert cloud.snapshot_state()["ports"][first.vip_port_id]["extra_ips"] == [
        {"subnet_id": "subnet-v6", "ip": "2001:db8::2"}
    ]
    taken = {**body, "additional_vips": [{"subnet_id": "subnet-v6", "ip_address": "2001:db8::2"}]}
    with pytest.raises(CloudError, match="already allocated"):
        cloud.create_load_balancer(taken)
    with pytest.raises(CloudError, match="not on the VIP network"):
        cloud.create_load_balancer({**body, "additional_vips": [{"subnet_id": "subnet-extra"}]})
    cloud.clock.sleep(3)
    cloud.delete_load_balancer(first.id)
    cloud.clock.sleep(3)
    assert cloud.subnet_free_addresses("subnet-v6") == 100, "released with the port"
    again = cloud.create_load_balancer(body)
    assert [v.ip_address for v in cloud.read_graph(again.id).additional_vips] == ["2001:db8::2"]


def test_subnet_free_counts_every_fixed_ip(tmp_path: Path) -> None:
    path = tmp_path / "cloud.db"
    fake.seed_sample(path, 3)
    cloud = fake.FakeCloud(path)
    cloud.mutate(
        lambda s: s["subnets"].update(
            {
                "subnet-b": {"network_id": "net-tenant", "cidr": "10.5.0.0/24", "capacity": 100, "reserved": 1},
                "subnet-c": {"network_id": "net-tenant", "cidr": "10.6.0.0/24", "capacity": 100, "reserved": 0},
            }
        )
    )
    source = cloud.read_graph(cloud.list_load_balancers()[0].id)
    body = clone.build_clone_body(source, campaign_id="c")
    body["additional_vips"] = [{"subnet_id": "subnet-b"}, {"subnet_id": "subnet-c"}]
    created = cloud.create_load_balancer(body)
    assert [v.ip_address for v in cloud.read_graph(created.id).additional_vips] == ["10.5.0.2", "10.6.0.2"]
    assert cloud.subnet_free_addresses("subnet-b") == 98, "one reserved, one fixed IP"
    fake.set_faults(path, subnet_free={"subnet-b": 1, "subnet-c": 0})
    assert (cloud.subnet_free_addresses("subnet-b"), cloud.subnet_free_addresses("subnet-c")) == (1, 0)
    subnets = fake.FakeCloud(path).snapshot_state()["subnets"]
    assert (subnets["subnet-b"]["capacity"], subnets["subnet-c"]["capacity"]) == (3, 1)


def test_a_listing_shows_every_change_since_the_last_one_also_made_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "cloud.db"
    fake.seed_sample(path, 3)
    cloud, other = fake.FakeCloud(path), fake.FakeCloud(path)
    source = cloud.read_graph(cloud.list_load_balancers()[0].id)
    created = cloud.create_load_balancer(clone.build_clone_body(source, campaign_id="c"))
    assert [lb.provisioning_status for lb in cloud.list_load_balancers() if lb.id == created.id] == ["PENDING_CREATE"]
    other.clock.sleep(3)
    assert [lb.provisioning_status for lb in cloud.list_load_balancers() if lb.id == created.id] == ["ACTIVE"]
    other.delete_load_balancer(source.id)
    other.clock.sleep(3)
    listed = cloud.list_load_balancers()
    assert source.id not in {lb.id for lb in listed} and len(listed) == 3
    assert cloud.list_load_balancers(project_id="nobody") == []
