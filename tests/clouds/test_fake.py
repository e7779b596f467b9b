"""The fake cloud behaves like Octavia and Neutron where lbswap depends on them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lbswap import clone
from lbswap.clouds import fake
from lbswap.errors import CloudError, CloudTimeout, Conflict, NotFound, PreconditionFailed, QuotaExceeded


@pytest.fixture
def cloud(tmp_path: Path) -> fake.FakeCloud:
    fake.seed_sample(tmp_path / "cloud.json", 10)
    return fake.FakeCloud(tmp_path / "cloud.json")


def _first(cloud: fake.FakeCloud, *, with_fip: bool = True):
    for summary in sorted(cloud.list_load_balancers(), key=lambda s: s.name):
        graph = cloud.read_graph(summary.id)
        if bool(graph.floating_ips) == with_fip:
            return graph
    raise AssertionError("no such load balancer")


def test_create_goes_pending_then_active_after_the_latency(cloud: fake.FakeCloud) -> None:
    source = _first(cloud)
    created = cloud.create_load_balancer(clone.build_clone_body(source, campaign_id="c"))
    assert created.provisioning_status == "PENDING_CREATE"
    with pytest.raises(Conflict):
        cloud.delete_load_balancer(created.id)
    cloud.clock.sleep(1.0)
    assert cloud.get_load_balancer(created.id).provisioning_status == "PENDING_CREATE"
    cloud.clock.sleep(1.5)
    assert cloud.get_load_balancer(created.id).provisioning_status == "ACTIVE"


def test_floating_ip_compare_and_swap(cloud: fake.FakeCloud) -> None:
    source = _first(cloud)
    other = _first(cloud, with_fip=False)
    fip = source.floating_ips[0]
    with pytest.raises(PreconditionFailed):
        cloud.move_floating_ip(fip.id, port_id=other.vip_port_id or "", fixed_ip_address=None, if_revision=99)
    assert cloud.get_floating_ip(fip.id).port_id == source.vip_port_id
    moved = cloud.move_floating_ip(
        fip.id, port_id=other.vip_port_id or "", fixed_ip_address=None, if_revision=fip.revision_number
    )
    assert moved.port_id == other.vip_port_id and moved.revision_number == fip.revision_number + 1
    with pytest.raises(NotFound):
        cloud.move_floating_ip(fip.id, port_id="nope", fixed_ip_address=None, if_revision=moved.revision_number)


def test_cascade_delete_frees_the_vip_port_and_disassociates_its_floating_ip(cloud: fake.FakeCloud) -> None:
    source = _first(cloud)
    cloud.delete_load_balancer(source.id)
    cloud.clock.sleep(3)
    with pytest.raises(NotFound):
        cloud.get_load_balancer(source.id)
    assert cloud.get_floating_ip(source.floating_ips[0].id).port_id is None
    assert source.vip_port_id not in cloud.snapshot_state()["ports"]
    cloud.delete_load_balancer(source.id)  # a delete of a missing load balancer is not an error


def test_quota_and_full_subnet_refuse_a_create(cloud: fake.FakeCloud) -> None:
    source = _first(cloud)
    body = clone.build_clone_body(source, campaign_id="c")
    cloud.mutate(lambda s: s["quotas"].update({"demo-project": {"load_balancer": 10}}))
    with pytest.raises(QuotaExceeded):
        cloud.create_load_balancer(body)
    cloud.mutate(lambda s: s["quotas"].clear())
    cloud.mutate(lambda s: s["subnets"]["subnet-tenant"].update(capacity=len(s["ports"])))
    assert cloud.subnet_free_addresses("subnet-tenant") == 0
    with pytest.raises(CloudError, match="no more IP addresses"):
        cloud.create_load_balancer(body)
    assert len(cloud.list_load_balancers()) == 10


def test_fully_populated_create_is_validated(cloud: fake.FakeCloud) -> None:
    body = clone.build_clone_body(_first(cloud), campaign_id="c")
    body["listeners"][0]["default_pool"] = {"name": "undefined"}
    with pytest.raises(CloudError, match="referenced but not defined"):
        cloud.create_load_balancer(body)
    body = clone.build_clone_body(_first(cloud), campaign_id="c", target=clone.TargetChanges(provider="ovn"))
    with pytest.raises(CloudError, match="does not support"):
        cloud.create_load_balancer(body)


def test_failover_rebuilds_amphorae_on_the_newest_image(cloud: fake.FakeCloud) -> None:
    lb = _first(cloud)
    image = cloud.publish_image("amphora-new")
    assert cloud.list_images("amphora")[0].id == image.id
    cloud.failover_load_balancer(lb.id)
    cloud.clock.sleep(3)
    assert {a.image_id for a in cloud.list_amphorae(lb.id)} == {image.id}


def test_stats_drain_after_the_last_floating_ip_left(cloud: fake.FakeCloud) -> None:
    source, other = _first(cloud), _first(cloud, with_fip=False)
    assert cloud.get_stats(source.id).active_connections > 0
    fip = source.floating_ips[0]
    cloud.move_floating_ip(fip.id, port_id=other.vip_port_id or "", fixed_ip_address=None, if_revision=1)
    assert cloud.get_stats(source.id).active_connections > 0, "stats lag one heartbeat"
    cloud.clock.sleep(60)
    assert cloud.get_stats(source.id).active_connections == 0


def test_faults_error_timeout_and_error_status(tmp_path: Path, cloud: fake.FakeCloud) -> None:
    lb = _first(cloud)
    fake.set_faults(cloud.path, fail_at=1, fail_kind="error")
    with pytest.raises(CloudError) as err:
        cloud.get_load_balancer(lb.id)
    assert err.value.status_code == 500 and err.value.request_id
    fake.set_faults(cloud.path, fail_at=1, fail_kind="timeout")
    with pytest.raises(CloudTimeout):
        cloud.failover_load_balancer(lb.id)
    assert cloud.get_load_balancer(lb.id).provisioning_status == "PENDING_UPDATE", "a timeout may take effect"
    cloud.clock.sleep(3)
    fake.set_faults(cloud.path, fail_at=1, fail_kind="error-status")
    cloud.failover_load_balancer(lb.id)
    cloud.clock.sleep(3)
    assert cloud.get_load_balancer(lb.id).provisioning_status == "ERROR"


def test_crash_exits_137_after_the_side_effect_took_effect(tmp_path: Path, cloud: fake.FakeCloud) -> None:
    lb = _first(cloud)
    fake.set_faults(cloud.path, crash_at=1)
    code = (
        "import sys; from lbswap.clouds.fake import FakeCloud; "
        f"FakeCloud(sys.argv[1]).failover_load_balancer({lb.id!r}); print('survived')"
    )
    done = subprocess.run([sys.executable, "-c", code, str(cloud.path)], capture_output=True, text=True)
    assert done.returncode == 137 and "survived" not in done.stdout
    state = fake.FakeCloud(cloud.path).snapshot_state()
    assert state["audit"][-1]["call"] == "failover_load_balancer"
    assert state["lbs"][lb.id]["provisioning_status"] == "PENDING_UPDATE"


def test_snapshot_seeds_a_rehearsal_cloud_with_the_same_ids(tmp_path: Path, cloud: fake.FakeCloud, run_cli) -> None:
    snap = tmp_path / "snap.json"
    out = run_cli(["--backend", f"fake:{cloud.path}", "snapshot", "--all", "-o", str(snap)])
    assert out.returncode == 0, out.stderr
    copy = tmp_path / "copy.json"
    seeded = run_cli(["fake", "seed", str(copy), "--from-snapshot", str(snap), "-f", "json"])
    assert seeded.returncode == 0, seeded.stderr
    rehearsal = fake.FakeCloud(copy)
    for summary in cloud.list_load_balancers():
        original, again = cloud.read_graph(summary.id), rehearsal.read_graph(summary.id)
        assert clone.comparable(again) == clone.comparable(original)
        assert [f.floating_ip_address for f in again.floating_ips] == [
            f.floating_ip_address for f in original.floating_ips
        ]
