"""Helpers for tier 2: build networks and fully-populated load balancers on the local Octavia and Neutron
(scripts/openstack-stack.sh) with openstacksdk directly, and check what lbswap leaves behind."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

import openstack
import pytest

CLOUD = os.environ.get("LBSWAP_TEST_CLOUD", "lbswap-test")
PROJECT = "3f1e0c8a9b6d4e2f8a7c5b4d3e2f1a0b"


def connect() -> Any:
    """The test cloud, or a failure (never a skip: CI=true forbids skips) saying how to start it."""
    if not os.environ.get("OS_CLIENT_CONFIG_FILE"):
        pytest.fail("OS_CLIENT_CONFIG_FILE is not set: run tier 2 with scripts/test-openstack.sh")
    try:
        conn = openstack.connect(cloud=CLOUD)
        list(conn.load_balancer.providers())
        list(conn.network.networks(limit=1))
    except Exception as exc:
        pytest.fail(f"the local Octavia/Neutron stack is not reachable ({exc}): run scripts/openstack-stack.sh start")
    return conn


@dataclass(frozen=True)
class Net:
    external_id: str
    subnet_id: str
    network_id: str
    flavor_ha: str


def ensure_network(conn: Any) -> Net:
    """An external network with a router into a private subnet (find or create: re-runs reuse them)."""
    net = conn.network
    ext = net.find_network("lbswap-public")
    if ext is None:
        ext = net.create_network(
            name="lbswap-public",
            is_router_external=True,
            provider_network_type="flat",
            provider_physical_network="public",
        )
        net.create_subnet(
            network_id=ext.id, cidr="172.24.4.0/24", ip_version=4, gateway_ip="172.24.4.1", is_dhcp_enabled=False
        )
    private = net.find_network("lbswap-private")
    if private is None:
        private = net.create_network(name="lbswap-private")
        subnet = net.create_subnet(network_id=private.id, name="lbswap-private", cidr="10.20.0.0/16", ip_version=4)
        router = net.create_router(name="lbswap-router", external_gateway_info={"network_id": ext.id})
        net.add_interface_to_router(router, subnet_id=subnet.id)
    subnet = net.find_subnet("lbswap-private")
    flavor = conn.load_balancer.find_flavor("lbswap-ha")
    if flavor is None:
        profile = conn.load_balancer.create_flavor_profile(
            name="lbswap-ha", provider_name="amphora", flavor_data='{"loadbalancer_topology": "ACTIVE_STANDBY"}'
        )
        flavor = conn.load_balancer.create_flavor(name="lbswap-ha", flavor_profile_id=profile.id, is_enabled=True)
    return Net(external_id=ext.id, subnet_id=subnet.id, network_id=private.id, flavor_ha=flavor.id)


def ensure_dual_stack(conn: Any, external_id: str) -> tuple[str, str]:
    """(IPv4 subnet, IPv6 subnet) of the network ``lbswap-dual``, its IPv4 subnet routed to the external
    network (find or create). Apart from ``lbswap-private`` so that other tests' ports stay IPv4 only."""
    net = conn.network
    if net.find_network("lbswap-dual") is None:
        dual = net.create_network(name="lbswap-dual")
        v4 = net.create_subnet(network_id=dual.id, name="lbswap-dual-v4", cidr="10.30.0.0/24", ip_version=4)
        net.create_subnet(network_id=dual.id, name="lbswap-dual-v6", cidr="fd00:30::/64", ip_version=6)
        router = net.create_router(name="lbswap-dual-router", external_gateway_info={"network_id": external_id})
        net.add_interface_to_router(router, subnet_id=v4.id)
    return net.find_subnet("lbswap-dual-v4").id, net.find_subnet("lbswap-dual-v6").id


def ensure_other_subnet(conn: Any) -> str:
    """A subnet on a network of its own, ``lbswap-other`` (find or create)."""
    net = conn.network
    if net.find_network("lbswap-other") is None:
        other = net.create_network(name="lbswap-other")
        net.create_subnet(network_id=other.id, name="lbswap-other", cidr="10.40.0.0/24", ip_version=4)
    return str(net.find_subnet("lbswap-other").id)


def full_body(net: Net, name: str, *, flavor_id: str | None = None) -> dict[str, Any]:
    """Two listeners, one with L7 policies redirecting to a second pool; a UDP listener; session persistence;
    members with backup, weight and monitor address; HTTP, TCP and UDP-CONNECT monitors; tags; non-default
    timeouts; allowed_cidrs."""
    body: dict[str, Any] = {
        "name": name,
        "description": f"tier 2 source {name}",
        "project_id": PROJECT,
        "vip_subnet_id": net.subnet_id,
        "tags": ["team=web", "env=test"],
        "listeners": [
            {
                "name": "http",
                "protocol": "HTTP",
                "protocol_port": 80,
                "default_pool": {"name": "web"},
                "connection_limit": 5000,
                "timeout_client_data": 12345,
                "timeout_member_connect": 3000,
                "timeout_member_data": 23456,
                "timeout_tcp_inspect": 10,
                "allowed_cidrs": ["10.0.0.0/8", "192.168.0.0/16"],
                "insert_headers": {"X-Forwarded-For": "true"},
                "tags": ["listener-tag"],
                "l7policies": [
                    {
                        "name": "api",
                        "action": "REDIRECT_TO_POOL",
                        "redirect_pool": {"name": "api"},
                        "position": 1,
                        "rules": [
                            {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"},
                            {"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-Api", "value": "v2"},
                        ],
                    },
                    {
                        "name": "old",
                        "action": "REDIRECT_TO_URL",
                        "redirect_url": "https://example.invalid/",
                        "redirect_http_code": 301,
                        "position": 2,
                        "rules": [{"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "old.example.invalid"}],
                    },
                ],
            },
            {"name": "tcp", "protocol": "TCP", "protocol_port": 443, "default_pool": {"name": "api"}},
            {"name": "dns", "protocol": "UDP", "protocol_port": 53, "default_pool": {"name": "dns"}},
        ],
        "pools": [
            {
                "name": "web",
                "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN",
                "session_persistence": {"type": "HTTP_COOKIE"},
                "tags": ["pool-tag"],
                "members": [
                    {"name": "web-1", "address": "10.20.0.10", "protocol_port": 8080, "weight": 5},
                    {
                        "name": "web-2",
                        "address": "10.20.0.11",
                        "protocol_port": 8080,
                        "weight": 0,
                        "backup": True,
                        "monitor_address": "10.20.0.111",
                        "monitor_port": 9000,
                        "subnet_id": net.subnet_id,
                    },
                ],
                "healthmonitor": {
                    "type": "HTTP",
                    "delay": 7,
                    "timeout": 4,
                    "max_retries": 2,
                    "max_retries_down": 5,
                    "http_method": "HEAD",
                    "url_path": "/healthz",
                    "expected_codes": "200-204",
                },
            },
            {
                "name": "api",
                "protocol": "TCP",
                "lb_algorithm": "LEAST_CONNECTIONS",
                "session_persistence": {"type": "SOURCE_IP"},
                "members": [{"address": "10.20.0.12", "protocol_port": 443}],
                "healthmonitor": {"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 3},
            },
            {
                "name": "dns",
                "protocol": "UDP",
                "lb_algorithm": "SOURCE_IP",
                "members": [{"address": "10.20.0.13", "protocol_port": 53, "weight": 3}],
                "healthmonitor": {"type": "UDP-CONNECT", "delay": 5, "timeout": 3, "max_retries": 2},
            },
        ],
    }
    if flavor_id:
        body["flavor_id"] = flavor_id
    return body


def small_body(net: Net, name: str, *, flavor_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "project_id": PROJECT,
        "vip_subnet_id": net.subnet_id,
        "tags": ["small"],
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
    if flavor_id:
        body["flavor_id"] = flavor_id
    return body


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def create_lb(conn: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = conn.load_balancer.post("/lbaas/loadbalancers", json={"loadbalancer": body})
    assert response.status_code == 201, response.text
    lb: dict[str, Any] = response.json()["loadbalancer"]
    wait_active(conn, lb["id"])
    return lb


def wait_active(conn: Any, lb_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    status = "?"
    while time.monotonic() < deadline:
        status = conn.load_balancer.get_load_balancer(lb_id).provisioning_status
        if status == "ACTIVE":
            return
        assert status != "ERROR", f"load balancer {lb_id} went to ERROR"
        time.sleep(0.2)
    raise AssertionError(f"load balancer {lb_id} still {status} after {timeout} s")


def add_fip(conn: Any, net: Net, port_id: str) -> Any:
    return conn.network.create_ip(floating_network_id=net.external_id, port_id=port_id)


def lb_exists(conn: Any, lb_id: str) -> bool:
    return conn.load_balancer.find_load_balancer(lb_id, ignore_missing=True) is not None


def leftovers(conn: Any) -> list[str]:
    """What lbswap must never leave: a VIP port whose load balancer is gone, a temporary floating IP,
    an unassociated floating IP, a load balancer not ACTIVE."""
    found = []
    lbs = {lb.id: lb for lb in conn.load_balancer.load_balancers()}
    for port in conn.network.ports():
        if port.name.startswith("octavia-lb-") and port.name.removeprefix("octavia-lb-") not in lbs:
            found.append(f"leaked VIP port {port.name}")
    for fip in conn.network.ips():
        if "lbswap:temp-fip" in (fip.tags or []):
            found.append(f"temporary floating IP {fip.floating_ip_address}")
        if not fip.port_id:
            found.append(f"floating IP {fip.floating_ip_address} points at nothing")
    for lb in lbs.values():
        if lb.provisioning_status != "ACTIVE":
            found.append(f"load balancer {lb.name} {lb.id} is {lb.provisioning_status}")
    return found


def clones_of(conn: Any, source_id: str) -> list[Any]:
    return [lb for lb in conn.load_balancer.load_balancers() if f"lbswap:clone-of={source_id}" in (lb.tags or [])]
