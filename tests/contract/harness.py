"""What a contract test needs from a backend beyond the Cloud protocol: a network to build on, ports, floating
IPs, a dual-stack network, quotas and images set up the way an operator would (lbswap itself never makes
them), and waits on the backend's own clock (simulated for the fake, bounded polls for a real cloud)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from lbswap.clouds.base import Cloud
from lbswap.errors import NotFound

#: what Cloud.get_quota documents (clouds/base.py)
QUOTA_KINDS = ("load_balancer", "listener", "pool", "member", "health_monitor", "l7policy", "port", "floatingip")
#: what Cloud.service_compute_quota documents
COMPUTE_KINDS = ("instances", "cores", "ram", "server_groups")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def new_project() -> str:
    """A project of its own: Octavia and the fake keep quotas and usage per project."""
    return uuid.uuid4().hex


class Harness:
    """One backend under test. Subclasses set the attributes and implement the setup methods."""

    cloud: Cloud
    #: timeout of every wait, in the backend's seconds
    timeout: float = 120.0
    #: an IPv4 VIP subnet and its network, with a router to ``external_network_id``
    subnet_id: str
    network_id: str
    external_network_id: str
    #: a subnet on another network
    other_subnet_id: str
    #: a flavor whose profile says ACTIVE_STANDBY
    flavor_ha: str
    project_id: str
    #: every project the tests used (cleanup looks there)
    projects: set[str]

    def fresh_project(self) -> str:
        """A project of its own, for quotas and usage that no other test touches."""
        project = new_project()
        self.projects.add(project)
        return project

    # --- what an operator sets up ---------------------------------------------------------------------

    def dual_stack(self) -> tuple[str, str]:
        """(IPv4 subnet, IPv6 subnet) of one network with a router to the external network."""
        raise NotImplementedError

    def new_port(self, subnet_id: str | None = None) -> str:
        """A port with one fixed IP on ``subnet_id`` (default: the IPv4 VIP subnet)."""
        raise NotImplementedError

    def delete_port(self, port_id: str) -> None:
        raise NotImplementedError

    def port_addresses(self, port_id: str) -> set[tuple[str, str]] | None:
        """(subnet, address) of every fixed IP of a port, or None when the port is gone."""
        raise NotImplementedError

    def add_fip(self, port_id: str) -> str:
        """A floating IP on a port (as an operator makes one); its id."""
        raise NotImplementedError

    def set_quota(self, project_id: str, **limits: int) -> None:
        """Octavia quotas of a project, by lbswap's kinds (``load_balancer=1``)."""
        raise NotImplementedError

    def publish_image(self, name: str, tag: str) -> bool:
        """Upload an amphora image carrying ``tag``; False when the backend has no image service."""
        raise NotImplementedError

    def reopen(self) -> Cloud:
        """Another instance of the backend on the same cloud (another process would make the same)."""
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """Credentials in the backend's configuration, which identity() must never show."""
        return []

    def cleanup(self) -> None:
        """Remove what the tests made, so that later tier 2 tests see a clean cloud."""

    # --- bodies --------------------------------------------------------------------------------------

    def small_body(self, name: str, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": name,
            "project_id": self.project_id,
            "vip_subnet_id": self.subnet_id,
            "tags": ["contract"],
            "listeners": [{"name": "web", "protocol": "HTTP", "protocol_port": 80, "default_pool": {"name": "web"}}],
            "pools": [
                {
                    "name": "web",
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": [{"address": "10.20.1.10", "protocol_port": 80}],
                    "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2, "url_path": "/"},
                }
            ],
        }
        body.update(extra)
        return body

    # --- waits on the backend's clock -----------------------------------------------------------------

    def wait_status(self, lb_id: str, want: str = "ACTIVE") -> list[str]:
        """Poll until the load balancer is ``want``; every status seen, in order, without repeats."""
        clock = self.cloud.clock
        deadline = clock.now() + self.timeout
        seen: list[str] = []
        while True:
            status = self.cloud.get_load_balancer(lb_id).provisioning_status
            if not seen or seen[-1] != status:
                seen.append(status)
            if status == want:
                return seen
            assert status != "ERROR", f"load balancer {lb_id} went to ERROR: {seen}"
            assert clock.now() < deadline, f"load balancer {lb_id} not {want} in {self.timeout} s: {seen}"
            clock.sleep(0.2)

    def wait_gone(self, lb_id: str) -> list[str]:
        clock = self.cloud.clock
        deadline = clock.now() + self.timeout
        seen: list[str] = []
        while True:
            try:
                status = self.cloud.get_load_balancer(lb_id).provisioning_status
            except NotFound:
                return seen
            if not seen or seen[-1] != status:
                seen.append(status)
            assert clock.now() < deadline, f"load balancer {lb_id} not deleted in {self.timeout} s: {seen}"
            clock.sleep(0.2)

    def create_active(self, body: Mapping[str, Any]) -> str:
        lb = self.cloud.create_load_balancer(body)
        self.wait_status(lb.id)
        return lb.id
