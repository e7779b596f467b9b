"""Tier 3: the local backend keeps the Cloud protocol's contract (the same behaviour as the fake backend):
409 while PENDING_*, 412 on a stale floating IP revision, NotFound, ERROR when a worker dies, images by tag."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from lbswap.clouds import Cloud
from lbswap.clouds.local import LocalCloud
from lbswap.errors import CloudError, Conflict, NotFound, PreconditionFailed
from lbswap.lab.probe import ProbeProcess, Target, summarize
from lbswap.lab.shapes import lb_body, seed

pytestmark = pytest.mark.dataplane


def _wait(cloud: LocalCloud, lb_id: str, status: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while cloud.get_load_balancer(lb_id).provisioning_status != status:
        assert time.monotonic() < deadline, cloud.get_load_balancer(lb_id)
        time.sleep(0.05)


def test_contract(cloud: LocalCloud) -> None:
    assert isinstance(cloud, Cloud)
    assert cloud.spec() == f"local:{cloud.directory}"
    created = cloud.create_load_balancer(lb_body("web", "SINGLE", "HTTP", 80))
    assert created.provisioning_status == "PENDING_CREATE"
    with pytest.raises(Conflict):
        cloud.delete_load_balancer(created.id)
    _wait(cloud, created.id, "ACTIVE")
    fip = cloud.create_floating_ip(floating_network_id="public", port_id=created.vip_port_id or "", tags=["t"])
    assert cloud.list_floating_ips(tag="t") == [fip]
    with pytest.raises(PreconditionFailed):
        cloud.move_floating_ip(fip.id, port_id=created.vip_port_id or "", fixed_ip_address=None, if_revision=0)
    with pytest.raises(NotFound):
        cloud.move_floating_ip(fip.id, port_id="no-such-port", fixed_ip_address=None, if_revision=1)
    with pytest.raises(NotFound):
        cloud.get_load_balancer("no-such-lb")
    with pytest.raises(NotFound):
        cloud.failover_amphora("no-such-amphora")
    with pytest.raises(CloudError, match="Validation failure"):
        cloud.create_load_balancer({**lb_body("bad", "SINGLE", "HTTP", 80), "vip_subnet_id": "elsewhere"})
    graph = cloud.read_graph(created.id)
    assert graph.floating_ips[0].floating_ip_address == fip.floating_ip_address
    assert [a.role for a in graph.amphorae] == ["STANDALONE"]
    assert graph.amphorae[0].image_id == cloud.list_images("amphora")[0].id
    cloud.delete_floating_ip(fip.id)
    cloud.delete_floating_ip(fip.id)  # a missing one is not an error
    cloud.delete_load_balancer(created.id)
    cloud.delete_load_balancer(created.id)  # already PENDING_DELETE: quiet
    deadline = time.monotonic() + 30
    while cloud.list_load_balancers():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_dead_worker_leaves_error(cloud: LocalCloud) -> None:
    cloud.configure(boot_seconds=30.0)  # the worker sleeps in the modeled boot window: kill it there
    created = cloud.create_load_balancer(lb_body("web", "SINGLE", "HTTP", 80))
    deadline = time.monotonic() + 10
    while True:
        with cloud.files.open(write=False) as state:
            pid = next(iter(state["ops"].values()))["pid"]
        if pid:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    _wait(cloud, created.id, "ERROR")
    cloud.delete_load_balancer(created.id)  # an ERROR load balancer can be deleted
    cloud.configure(boot_seconds=0.2)


def test_failover_boots_the_newest_image_and_flavor_tags(cloud: LocalCloud) -> None:
    lbs = seed(cloud, [("pair", "ACTIVE_STANDBY", "HTTP", 80)])
    new = cloud.publish_image("amphora-new", ["amphora"])
    lb_id = lbs["pair"]["id"]
    cloud.failover_load_balancer(lb_id)
    with pytest.raises(Conflict):
        cloud.failover_load_balancer(lb_id)
    _wait(cloud, lb_id, "ACTIVE")
    assert sorted(a.role for a in cloud.list_amphorae(lb_id)) == ["BACKUP", "MASTER"]
    assert {a.image_id for a in cloud.list_amphorae(lb_id)} == {new.id}
    assert cloud.get_flavor("canary").amp_image_tag == "amphora-canary"
    with pytest.raises(CloudError, match="no amphora image carries the tag amphora-canary"):
        cloud.create_load_balancer({**lb_body("c", "SINGLE", "HTTP", 80), "flavor_id": "flavor-canary"})
    canary = cloud.publish_image("amphora-canary-1", ["amphora-canary"])
    created = cloud.create_load_balancer({**lb_body("c", "SINGLE", "HTTP", 80), "flavor_id": "flavor-canary"})
    assert cloud.list_amphorae(created.id)[0].image_id == canary.id


@pytest.mark.parametrize("flush", [False, True], ids=["keep-conntrack", "flush-conntrack"])
def test_a_move_keeps_established_flows_unless_flushed(cloud: LocalCloud, tmp_path: Path, flush: bool) -> None:
    cloud.configure(flush_conntrack=flush)
    lbs = seed(cloud, [("blue", "SINGLE", "HTTP", 80), ("green", "SINGLE", "HTTP", 80)])
    fip = cloud.get_floating_ip(next(f.id for f in cloud.list_floating_ips() if f.port_id == lbs["blue"]["port_id"]))
    probe = ProbeProcess(
        f"{cloud.prefix}-client",
        [Target("fip", fip.floating_ip_address, 80)],
        tmp_path,
        rate=50,
        long_lived=3,
        stream_seconds=3,
    )
    probe.start()
    try:
        time.sleep(0.5)
        cloud.move_floating_ip(
            fip.id, port_id=lbs["green"]["port_id"], fixed_ip_address=None, if_revision=fip.revision_number
        )
        time.sleep(1.0)
    finally:
        probed = probe.stop()
    summary = summarize(probed.attempts, probed.long_lived)
    assert summary.failed == 0
    assert summary.long_lived_cut == (3 if flush else 0), probed.long_lived
