"""Tier 2: the plan tells the truth about a dual-stack load balancer on the real Octavia and Neutron APIs.

Octavia puts the IPv6 additional VIP on the main VIP port; Neutron floating IPs are IPv4 only. So a fip-swap
keeps the IPv4 address (its floating IP moves) and changes the IPv6 one, and ``run`` refuses without
``--accept-address-change``. Run with scripts/test-openstack.sh.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.clouds import openstack_stack as stack
from tests.conftest import SRC

pytestmark = [
    pytest.mark.openstack,
    pytest.mark.filterwarnings("ignore::openstack.warnings._RemovedInSDKWarning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.OpenStackDeprecationWarning"),
]


def _lbswap(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it: --os-cloud, the stack's clouds.yaml, a private state directory."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "XDG_STATE_HOME": str(tmp_path / "state")}
    return subprocess.run(
        [sys.executable, "-m", "lbswap", "--os-cloud", stack.CLOUD, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture
def dual_stack_lb() -> Any:
    """A load balancer with an IPv4 VIP behind a floating IP and an IPv6 additional VIP; removed afterwards."""
    conn = stack.connect()
    net = stack.ensure_network(conn)
    v4, v6 = stack.ensure_dual_stack(conn, net.external_id)
    body = stack.small_body(net, stack.unique("dual"))
    body.update(vip_subnet_id=v4, additional_vips=[{"subnet_id": v6}])
    lb = stack.create_lb(conn, body)
    fip = stack.add_fip(conn, net, lb["vip_port_id"])
    try:
        yield conn, conn.load_balancer.get(f"/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"], fip
    finally:
        conn.network.delete_ip(fip, ignore_missing=True)
        conn.load_balancer.delete(f"/lbaas/loadbalancers/{lb['id']}?cascade=true")
        from lbswap.clouds.openstack import OpenStackCloud
        from lbswap.errors import NotFound

        cloud = OpenStackCloud(stack.CLOUD)
        deadline = cloud.clock.now() + 60
        while cloud.clock.now() < deadline:  # a lookup that finds it gone also deletes its VIP port
            try:
                cloud.get_load_balancer(lb["id"])
            except NotFound:
                break
            cloud.clock.sleep(0.2)
        cloud.close()


def test_a_dual_stack_load_balancer_is_planned_with_its_ipv6_address_changing(
    dual_stack_lb: Any, tmp_path: Path
) -> None:
    conn, lb, fip = dual_stack_lb
    (extra,) = lb["additional_vips"]
    port = conn.network.get_port(lb["vip_port_id"])
    assert {f["ip_address"] for f in port.fixed_ips} == {lb["vip_address"], extra["ip_address"]}, "not on one port"
    planned = _lbswap(tmp_path, "plan", "--lb", lb["id"], "-f", "json")
    assert planned.returncode == 2, planned.stderr
    (row,) = json.loads(planned.stdout)
    assert row["strategy"] == "fip-swap", row
    assert row["addresses"] == [
        {
            "address": lb["vip_address"],
            "subnet_id": lb["vip_subnet_id"],
            "floating_ip": fip.floating_ip_address,
            "kept": True,
        },
        {"address": extra["ip_address"], "subnet_id": extra["subnet_id"], "floating_ip": None, "kept": False},
    ]
    assert any(f["code"] == "address-change" and f["blocking"] for f in row["findings"]), row["findings"]
    refused = _lbswap(tmp_path, "run", "--lb", lb["id"], "--yes")
    assert refused.returncode == 2, refused.stderr
    assert extra["ip_address"] in refused.stderr and "--accept-address-change" in refused.stderr, refused.stderr
    assert stack.clones_of(conn, lb["id"]) == [], "a refused run created a clone"
    assert conn.network.get_ip(fip.id).port_id == lb["vip_port_id"]
    assert conn.load_balancer.get_load_balancer(lb["id"]).provisioning_status == "ACTIVE"
