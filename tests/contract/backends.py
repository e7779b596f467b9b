"""The backends the contract suite runs against: a fresh fake (tier 1) and the real Octavia and Neutron API
servers of scripts/openstack-stack.sh (tier 2), each with what an operator would set up around it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from lbswap.clouds import fake
from lbswap.clouds.base import Cloud
from lbswap.clouds.fake import neutron
from lbswap.errors import CloudError
from tests.contract.harness import Harness, new_project, unique


class FakeHarness(Harness):
    """A fresh simulated cloud (its time is simulated: waits advance it, nothing sleeps)."""

    def __init__(self, path: Path) -> None:
        fake.seed_sample(path, 0)
        self.path = path
        self.cloud = fake.FakeCloud(path)
        self.subnet_id, self.network_id = "subnet-tenant", "net-tenant"
        self.other_subnet_id = "subnet-extra"
        self.external_network_id = fake.EXTERNAL_NETWORK
        self.flavor_ha = "flavor-ha"
        self.project_id = new_project()
        self.projects = {self.project_id}

    def dual_stack(self) -> tuple[str, str]:
        def add(state: dict[str, Any]) -> None:
            for subnet_id, cidr in (("subnet-dual4", "10.30.0.0/24"), ("subnet-dual6", "fd00:30::/64")):
                state["subnets"].setdefault(
                    subnet_id, {"network_id": "net-dual", "cidr": cidr, "capacity": 250, "reserved": 0}
                )

        self.cloud.mutate(add)
        return "subnet-dual4", "subnet-dual6"

    def new_port(self, subnet_id: str | None = None) -> str:
        subnet = subnet_id or self.subnet_id
        return str(self.cloud.change(lambda state: neutron.new_port(state, subnet, self.project_id, None)["id"]))

    def delete_port(self, port_id: str) -> None:
        self.cloud.change(lambda state: neutron.release_ports(state, {port_id}))

    def port_addresses(self, port_id: str) -> set[tuple[str, str]] | None:
        port = self.cloud.snapshot_state()["ports"].get(port_id)
        if port is None:
            return None
        return {(port["subnet_id"], port["ip"]), *((e["subnet_id"], e["ip"]) for e in port.get("extra_ips", []))}

    def add_fip(self, port_id: str) -> str:
        def add(state: dict[str, Any]) -> str:
            port = state["ports"][port_id]
            return str(neutron.new_fip(state, port_id, port["ip"], [], self.project_id)["id"])

        return str(self.cloud.mutate(add))

    def set_quota(self, project_id: str, **limits: int) -> None:
        self.cloud.mutate(lambda state: state["quotas"].setdefault(project_id, {}).update(limits))

    def publish_image(self, name: str, tag: str) -> bool:
        self.cloud.clock.sleep(1.0)  # a later upload
        self.cloud.publish_image(name, [tag])
        return True

    def reopen(self) -> Cloud:
        return fake.FakeCloud(self.path)


#: lbswap's quota kinds -> the names Octavia's quota API takes
OCTAVIA_QUOTA_NAMES = {
    "load_balancer": "loadbalancer",
    "listener": "listener",
    "pool": "pool",
    "member": "member",
    "health_monitor": "healthmonitor",
    "l7policy": "l7policy",
}


class OpenStackHarness(Harness):
    """The real Octavia and Neutron APIs; what the tests make is removed at the end (other tier 2 tests check
    that nothing is left behind)."""

    def __init__(self, conn: Any, net: Any) -> None:
        from lbswap.clouds.openstack import OpenStackCloud
        from tests.clouds import openstack_stack as stack

        self.conn = conn
        self.stack = stack
        self.cloud = OpenStackCloud(stack.CLOUD)
        self.subnet_id, self.network_id = net.subnet_id, net.network_id
        self.external_network_id = net.external_id
        self.flavor_ha = net.flavor_ha
        self.other_subnet_id = stack.ensure_other_subnet(conn)
        self.project_id = new_project()
        self.projects = {self.project_id}
        self._ports: list[str] = []
        self._fips: list[str] = []

    def dual_stack(self) -> tuple[str, str]:
        return self.stack.ensure_dual_stack(self.conn, self.external_network_id)  # type: ignore[no-any-return]

    def new_port(self, subnet_id: str | None = None) -> str:
        subnet = self.conn.network.get_subnet(subnet_id or self.subnet_id)
        port = self.conn.network.create_port(
            network_id=subnet.network_id, fixed_ips=[{"subnet_id": subnet.id}], name=unique("contract")
        )
        self._ports.append(port.id)
        return str(port.id)

    def delete_port(self, port_id: str) -> None:
        self.conn.network.delete_port(port_id, ignore_missing=True)

    def port_addresses(self, port_id: str) -> set[tuple[str, str]] | None:
        port = self.conn.network.find_port(port_id)
        if port is None:
            return None
        return {(f["subnet_id"], f["ip_address"]) for f in port.fixed_ips}

    def add_fip(self, port_id: str) -> str:
        fip = self.conn.network.create_ip(floating_network_id=self.external_network_id, port_id=port_id)
        self._fips.append(fip.id)
        return str(fip.id)

    def set_quota(self, project_id: str, **limits: int) -> None:
        self.projects.add(project_id)
        body = {"quota": {OCTAVIA_QUOTA_NAMES[kind]: n for kind, n in limits.items()}}
        response = self.conn.load_balancer.put(f"/lbaas/quotas/{project_id}", json=body)
        assert response.status_code < 300, response.text

    def publish_image(self, name: str, tag: str) -> bool:
        return False  # the tier 2 stack has no image API (Glance)

    def reopen(self) -> Cloud:
        from lbswap.clouds.openstack import OpenStackCloud

        return OpenStackCloud(self.stack.CLOUD)

    def secrets(self) -> list[str]:
        config = yaml.safe_load(Path(os.environ["OS_CLIENT_CONFIG_FILE"]).read_text())
        auth = config["clouds"][self.stack.CLOUD].get("auth") or {}
        return [str(v) for k, v in auth.items() if any(w in k for w in ("password", "token", "secret"))]

    def cleanup(self) -> None:
        for fip_id in self._fips:
            self.cloud.delete_floating_ip(fip_id)
        lbs = [lb for project in self.projects for lb in self.cloud.list_load_balancers(project_id=project)]
        for lb in lbs:
            if lb.provisioning_status.startswith("PENDING_") and lb.provisioning_status != "PENDING_DELETE":
                self.wait_status(lb.id)
            try:
                self.cloud.delete_load_balancer(lb.id, cascade=True)
            except CloudError:
                self.wait_status(lb.id)
                self.cloud.delete_load_balancer(lb.id, cascade=True)
        for lb in lbs:
            self.wait_gone(lb.id)  # the backend deletes the VIP port the noop driver leaves
        for port_id in self._ports:
            self.conn.network.delete_port(port_id, ignore_missing=True)
