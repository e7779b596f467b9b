"""Namespaces that stand for the local cloud's tenants: members and clients (tests and the benchmark).

A tenant guest is a namespace plugged on a Neutron network as a Neutron port bound to the agents' host (the Open
vSwitch agent makes it ACTIVE); an external guest is a namespace on the external bridge with no Neutron port,
holding the external network's gateway address (the upstream side of the router). ``info`` is the local cloud's
``cloud.json`` (scripts/local-cloud.sh)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbswap.localcloud import ovs
from lbswap.localcloud.names import external_veth_name, host_veth_name


@dataclass(frozen=True)
class Guest:
    ns: str
    ip: str
    port_id: str  # "" for an external guest
    outer: str  # the host's end of its veth
    bridge: str


def plug_tenant(conn: Any, info: dict[str, Any], prefix: str, project_id: str, timeout: float = 30.0) -> Guest:
    """A namespace on the tenant network as a Neutron port; returns once the port is ACTIVE."""
    net = conn.network
    port = net.create_port(network_id=info["tenant_network_id"], name=f"lc-test-{prefix}", project_id=project_id)
    ns = f"{prefix}-{uuid.uuid4().hex[:8]}"
    guest = Guest(ns, port.fixed_ips[0]["ip_address"], port.id, host_veth_name(port.id), info["integration_bridge"])
    try:
        ovs.run("ip", "netns", "add", ns)
        ovs.run("ip", "-n", ns, "link", "set", "lo", "up")
        net.update_port(port.id, device_id=ns, device_owner="compute:lbswap-test", binding_host_id=info["agent_host"])
        ovs.plug(ns, "eth0", guest.outer, guest.bridge, info["ovsdb"], mac=port.mac_address, port_id=port.id)
        prefix_len = info["tenant_cidr"].split("/")[1]
        ovs.run("ip", "-n", ns, "addr", "add", f"{guest.ip}/{prefix_len}", "dev", "eth0")
        ovs.run("ip", "-n", ns, "route", "add", "default", "via", info["tenant_gateway"])
        deadline = time.monotonic() + timeout
        while net.get_port(port.id).status != "ACTIVE":
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {port.id} of {ns} not ACTIVE within {timeout:.0f} s")
            time.sleep(0.25)
    except Exception:
        remove(conn, info, guest)
        raise
    return guest


def plug_external(info: dict[str, Any]) -> Guest:
    """A namespace on the external bridge holding the external network's gateway address."""
    token = uuid.uuid4().hex
    guest = Guest(f"lcx-{token[:8]}", info["external_gateway"], "", external_veth_name(token), info["external_bridge"])
    try:
        ovs.run("ip", "netns", "add", guest.ns)
        ovs.run("ip", "-n", guest.ns, "link", "set", "lo", "up")
        ovs.plug(guest.ns, "eth0", guest.outer, guest.bridge, info["ovsdb"])
        prefix_len = info["external_cidr"].split("/")[1]
        ovs.run("ip", "-n", guest.ns, "addr", "add", f"{guest.ip}/{prefix_len}", "dev", "eth0")
    except Exception:
        remove(None, info, guest)
        raise
    return guest


def serve(guest: Guest, token: str, root: Path, port: int = 8080) -> subprocess.Popen[bytes]:
    """An HTTP server in the guest whose page is the token (the member's name)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(token + "\n")
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", guest.ip, "--directory", str(root)]
    return subprocess.Popen(
        ["ip", "netns", "exec", guest.ns, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def remove(conn: Any, info: dict[str, Any], guest: Guest) -> None:
    """Kill what runs in the guest, remove its namespace, veth and Neutron port."""
    pids = subprocess.run(["ip", "netns", "pids", guest.ns], capture_output=True, text=True, check=False).stdout
    for pid in pids.split():
        ovs.quiet("kill", "-KILL", pid)
    ovs.quiet("ip", "netns", "del", guest.ns)
    ovs.unplug(guest.outer, guest.bridge, info["ovsdb"])
    if conn is not None and guest.port_id:
        conn.network.delete_port(guest.port_id, ignore_missing=True)
