"""Plugging a network namespace into the local cloud's Open vSwitch, as Nova's VIF plugging does for a VM.

Shared by the compute driver (amphorae), the local cloud's tests and its benchmark (members, clients). Plain
commands (ip, ethtool, ovs-vsctl), no Octavia import.

A port is a veth: one end in the namespace (the Neutron port's MAC), the other on a bridge of the cloud's
Open vSwitch. On the integration bridge the Open vSwitch agent binds it by ``external_ids:iface-id`` (the
Neutron port's id) and ``attached-mac``, and sets it ACTIVE; on the external bridge a veth with no Neutron
port is the upstream side of the external network. The userspace datapath does not complete checksums that a
veth leaves to offload (ping works, TCP does not), so TX checksum offload is turned off on both ends.
"""

from __future__ import annotations

import subprocess


def run(*cmd: str) -> str:
    """Run a command; its stdout, or RuntimeError with its stderr."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def quiet(*cmd: str) -> None:
    """Run a command whose failure does not matter (removing what may be gone already)."""
    subprocess.run(cmd, capture_output=True, check=False, timeout=60)


def plug(
    ns: str,
    inner: str,
    outer: str,
    bridge: str,
    db: str,
    *,
    mac: str | None = None,
    port_id: str | None = None,
) -> None:
    """A veth from namespace ns (device inner, with mac) to bridge (device outer), bound to port_id if given."""
    quiet("ip", "link", "del", outer)
    run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns)
    if mac:
        run("ip", "-n", ns, "link", "set", inner, "address", mac)
    run("ip", "netns", "exec", ns, "ethtool", "-K", inner, "tx", "off")
    run("ethtool", "-K", outer, "tx", "off")
    iface = ["--", "--may-exist", "add-port", bridge, outer]
    if port_id:
        iface += [
            "--",
            "set",
            "Interface",
            outer,
            f"external_ids:iface-id={port_id}",
            f"external_ids:attached-mac={mac}",
            "external_ids:iface-status=active",
        ]
    run("ovs-vsctl", f"--db={db}", "--timeout=10", *iface)
    run("ip", "link", "set", outer, "up")
    run("ip", "-n", ns, "link", "set", inner, "up")


def unplug(outer: str, bridge: str, db: str) -> None:
    """Remove the host's end from the bridge and the link (the namespace's end goes with it)."""
    quiet("ovs-vsctl", f"--db={db}", "--timeout=10", "--if-exists", "del-port", bridge, outer)
    quiet("ip", "link", "del", outer)
