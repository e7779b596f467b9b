"""The fake backend's modeled probe: what a request to a floating IP would meet, read from the state alone.

A floating IP on no port, or on a port no load balancer serves, is answered by the router (refused); the port
is the one its data plane reaches at the simulated time (a move reaches it ``fip_lag`` seconds after the API
answered: neutron.dataplane_port), and the result names that load balancer (``served_by``). Else the
load balancer's serving amphora answers as its image says: an image published with a fault (``refuse``,
``http-503``, ``reset``, ``stall``, optionally only ``fault_after`` seconds after the amphora booted) shows it;
otherwise HTTP answers 200 and TERMINATED_HTTPS presents the certificate of the listener's TLS container.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

from lbswap.clouds.base import ProbeResult
from lbswap.clouds.fake.neutron import dataplane_port

FAULTS = ("refuse", "http-503", "reset", "stall")
HTTP_LIKE = ("HTTP", "TERMINATED_HTTPS", "PROMETHEUS")
SERVING = ("ACTIVE", "PENDING_UPDATE")


def model_probe(state: Any, address: str, port: int, protocol: str, *, timeout: float) -> ProbeResult:
    refused = ProbeResult(ok=False, error="refused")
    fip = next(iter(state.find("fips", "fip.address", address)), None)  # by index: no scan of the cloud
    reached = None if fip is None else dataplane_port(fip, float(state["clock"]))
    if not reached:
        return refused
    lb = next((lb for lb in state.find("lbs", "lb.port", reached) if reached in vip_ports(lb)), None)
    if lb is None or lb["provisioning_status"] not in SERVING:
        return refused
    answer = _answer(state, lb, port=port, protocol=protocol, timeout=timeout)
    return dataclasses.replace(answer, served_by=lb["id"], served_at=float(state["clock"]))


def _answer(state: Any, lb: Mapping[str, Any], *, port: int, protocol: str, timeout: float) -> ProbeResult:
    """How the load balancer's serving amphora answers a listener on ``port``."""
    refused = ProbeResult(ok=False, error="refused")
    listener = next((li for li in lb["listeners"] if li["protocol_port"] == port and li["protocol"] == protocol), None)
    if listener is None or not listener.get("admin_state_up", True):
        return refused
    fault = active_fault(state, lb, now=float(state["clock"]))
    if fault == "refuse":
        return refused
    if fault == "reset" or (fault == "http-503" and protocol not in HTTP_LIKE):
        return ProbeResult(ok=False, error="reset")
    if fault == "stall":
        return ProbeResult(ok=False, error="timeout", seconds=timeout)
    if protocol not in HTTP_LIKE:
        return ProbeResult(ok=True)
    fingerprint = None
    if protocol == "TERMINATED_HTTPS":
        ref = str(listener.get("default_tls_container_ref") or "")
        fingerprint = hashlib.sha256(ref.encode()).hexdigest()
    return ProbeResult(ok=True, status=503 if fault == "http-503" else 200, cert_fingerprint=fingerprint)


def active_fault(state: Any, lb: Mapping[str, Any], *, now: float) -> str | None:
    """The fault the load balancer's serving amphora shows at ``now`` (None: healthy)."""
    amphorae = sorted(lb.get("amphorae", []), key=lambda a: a["role"] == "BACKUP")
    if not amphorae:
        return None
    amphora = amphorae[0]
    image = next((i for i in state["images"] if i["id"] == amphora["image_id"]), None)
    if image is None or not image.get("fault"):
        return None
    if now < float(amphora.get("booted_at", 0.0)) + float(image.get("fault_after") or 0.0):
        return None
    return str(image["fault"])


def vip_ports(lb: Mapping[str, Any]) -> set[str]:
    ports = {lb["vip_port_id"]}
    ports.update(v["port_id"] for v in lb.get("additional_vips", []) if v.get("port_id"))
    return ports
