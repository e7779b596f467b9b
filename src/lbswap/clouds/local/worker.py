"""Octavia's controller worker for the local cloud: one detached process per create, failover or delete.

It records its pid first (a dead worker leaves its load balancer in ERROR), does the slow part without
holding the state lock, and settles the load balancer to ACTIVE (or removes it) at the end. Every rebuild
waits ``boot_seconds`` between the old amphora going and the new one being plugged: that stands for
Octavia's VM boot, port plugging and listener configuration, which this lab does not otherwise have."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from typing import Any

from lbswap.clouds.local import apply, render
from lbswap.clouds.local import state as st
from lbswap.clouds.local.cloud import LocalCloud
from lbswap.clouds.local.state import boot_image, new_amphora
from lbswap.errors import CloudError, ConfigError, LbswapError

READY_TIMEOUT = 30.0


def _image(state: dict[str, Any], image_id: str) -> dict[str, Any]:
    return next(i for i in state["images"] if i["id"] == image_id)


def start_amphora(cloud: LocalCloud, lb: dict[str, Any], amphora: dict[str, Any], image: dict[str, Any]) -> None:
    files = apply.amphora_files(cloud.prefix, amphora)
    started = time.time()
    cfg = render.render_haproxy(lb, amphora=amphora, image=image, stats_socket=str(files["sock"]), started_at=started)
    ports = [li["protocol_port"] for li in lb.get("listeners", [])]
    fault_nft = render.render_fault_nft(image, lb["vip_address"], ports, render.fault_from(image, started))
    keepalived = None
    if lb["topology"] == "ACTIVE_STANDBY":
        keepalived = render.render_keepalived(lb, amphora=amphora, prefix=st.TENANT_PREFIX, router_id=lb["vrid"])
    vip = lb["vip_address"] if lb["topology"] == "SINGLE" else None
    apply.amphora_up(cloud.prefix, amphora, vip=vip, haproxy_cfg=cfg, keepalived_cfg=keepalived, fault_nft=fault_nft)


def wait_answering(cloud: LocalCloud, lb: dict[str, Any]) -> None:
    """haproxy answers on every amphora's stats socket, and some amphora holds the VIP."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        answering = all(apply.haproxy_stats(cloud.prefix, a) is not None for a in lb["amphorae"])
        if answering and any(_holds_vip(a, lb["vip_address"]) for a in lb["amphorae"]):
            return
        time.sleep(0.1)
    raise CloudError(f"load balancer {lb['id']}: haproxy did not answer within {READY_TIMEOUT:.0f} s")


def _holds_vip(amphora: dict[str, Any], vip: str) -> bool:
    out = apply.ns_run(amphora["ns"], ["ip", "-4", "-o", "addr", "show", "dev", "eth0"], check=False)
    return f" {vip}/" in out


class Stopping(Exception):
    """The cloud is being taken down (``lbswap local down``): plug nothing more."""


def _check_running(state: dict[str, Any]) -> None:
    if state.get("stopping"):
        raise Stopping


def run_op(cloud: LocalCloud, op_id: str) -> None:
    with cloud.files.open(write=True) as state:
        _check_running(state)
        op = state["ops"][op_id]
        op["pid"] = os.getpid()
        lb = state["lbs"][op["lb_id"]]
        boot_seconds = float(state["boot_seconds"])
        images = {i["id"]: i for i in state["images"]}
    kind = op["kind"]
    if kind == "create":
        time.sleep(max(0.0, op["spawned"] + boot_seconds - time.time()))  # the VMs boot before anything answers
        for amphora in lb["amphorae"]:
            start_amphora(cloud, lb, amphora, images[amphora["image_id"]])
        wait_answering(cloud, lb)
        _settle(cloud, op_id, lb)
    elif kind == "failover":
        for amp_id in op["amphorae"]:
            old = next(a for a in lb["amphorae"] if a["id"] == amp_id)
            apply.amphora_down(cloud.prefix, old, soft=False)
            time.sleep(boot_seconds)  # Octavia's rebuild window (see the module docstring)
            with cloud.files.open(write=True) as state:
                _check_running(state)
                current = state["lbs"][lb["id"]]
                new = new_amphora(state, current, old["role"], cloud.prefix)
                current["amphorae"] = [new if a["id"] == amp_id else a for a in current["amphorae"]]
                image = boot_image(state, current)
                lb = current
            start_amphora(cloud, lb, new, image)
        wait_answering(cloud, lb)
        _settle(cloud, op_id, lb)
    elif kind == "delete":
        for amphora in lb["amphorae"]:  # Octavia deletes the VM: what is still open is cut
            apply.amphora_down(cloud.prefix, amphora, soft=False)
        with cloud.files.open(write=True) as state:
            ports = {lb["vip_port_id"]}
            for fip in state["fips"].values():
                if fip["port_id"] in ports:  # Neutron disassociates a floating IP whose port goes away
                    fip.update(port_id=None, fixed_ip_address=None)
                    fip["revision_number"] += 1
            for port in ports:
                state["ports"].pop(port, None)
            state["lbs"].pop(lb["id"], None)
            state["ops"].pop(op_id, None)
            apply.load_nft(cloud.prefix, render.render_nft(state["fips"].values()))


def _settle(cloud: LocalCloud, op_id: str, lb: dict[str, Any]) -> None:
    with cloud.files.open(write=True) as state:
        current = state["lbs"][lb["id"]]
        current["amphorae"] = lb["amphorae"]
        current["provisioning_status"] = "ACTIVE"
        current["operating_status"] = "ONLINE"
        current.pop("op", None)
        state["ops"].pop(op_id, None)


def _fail(cloud: LocalCloud, op_id: str, message: str) -> None:
    with cloud.files.open(write=True) as state:
        op = state["ops"].pop(op_id, None)
        lb = state["lbs"].get(op["lb_id"]) if op else None
        if lb is not None:
            lb["provisioning_status"] = "ERROR"
            lb["operating_status"] = "ERROR"
            lb["error"] = message
            lb.pop("op", None)


def main(argv: list[str]) -> int:
    state_dir, op_id = argv
    cloud = LocalCloud(state_dir)
    try:
        run_op(cloud, op_id)
    except (Stopping, ConfigError):  # taken down meanwhile (the state file is gone): nothing left to do
        return 0
    except Exception as exc:  # the load balancer goes ERROR, like Octavia's failed flows
        traceback.print_exc()
        with contextlib.suppress(LbswapError):
            _fail(cloud, op_id, str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
