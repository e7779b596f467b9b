"""``LocalCloud``: the Cloud protocol on a real data plane on this host (network namespaces, haproxy,
keepalived, nftables). Octavia's asynchronous work (create, failover, delete) runs in detached worker
processes (worker.py), so a load balancer goes ``PENDING_*`` and settles like in Octavia, also while the
lbswap that asked is killed. Statuses are derived on read: a worker that died half-way leaves ``ERROR``."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lbswap.clouds.base import ProbeResult, SystemClock, listed, summary_of
from lbswap.clouds.base import validation_failure as _bad
from lbswap.clouds.local import apply, render
from lbswap.clouds.local import state as st
from lbswap.clouds.local.body import new_lb
from lbswap.errors import CloudError, ConfigError, Conflict, NotFound, PreconditionFailed
from lbswap.model import (
    Amphora,
    Flavor,
    FloatingIP,
    Image,
    LBSummary,
    LoadBalancer,
    Provider,
    QuotaUsage,
    StackResource,
    Stats,
    from_json,
)

PROTOCOLS = ("HTTP", "TCP")
ALGORITHMS = tuple(render.ALGORITHMS)
WORKER_START_GRACE = 15.0  # seconds a spawned worker may take to record its pid
MEMBERS = ({"name": "m0", "address": f"{st.MEMBER_NET}.10"}, {"name": "m1", "address": f"{st.MEMBER_NET}.11"})


class LocalCloud:
    """The local data plane behind ``--backend local[:STATE_DIR]`` (root only)."""

    kind = "local"

    def __init__(self, state_dir: str | None = None) -> None:
        self.directory = Path(state_dir).resolve() if state_dir else st.default_state_dir().resolve()
        self.files = st.StateFile(self.directory)
        self.prefix = st.lab_prefix(self.directory)
        self._clock = SystemClock()

    @property
    def clock(self) -> SystemClock:
        return self._clock

    def spec(self) -> str:
        return f"local:{self.directory}"

    def identity(self) -> str:
        """This cloud's identity, recorded with a campaign: its state directory."""
        return f"local:{os.path.realpath(self.directory)}"

    def close(self) -> None:
        pass

    @contextmanager
    def _state(self, *, write: bool = True) -> Iterator[dict[str, Any]]:
        with self.files.open(write=write) as state:
            if write and state.get("stopping"):
                raise CloudError(f"the local cloud in {self.directory} is being taken down", status_code=503)
            if _refresh(state) and not write:
                self.files._save(state)
            yield state

    # --- lab lifecycle (lbswap local up|down|status) ------------------------------------------------------

    def up(self, *, boot_seconds: float | None = None) -> dict[str, Any]:
        """Create the lab (router, client, tenant bridge, members, the first image) unless it is up.

        :raises ConfigError: not root, or a tool is missing (run scripts/setup-dataplane.sh).
        """
        if os.geteuid() != 0:
            raise ConfigError("the local data plane needs root (network namespaces, nftables): run it as root")
        for tool in ("ip", "nft", "haproxy", "keepalived", "conntrack", "arping", "setsid"):
            if shutil.which(tool) is None:
                raise ConfigError(f"{tool} is missing: run scripts/setup-dataplane.sh")
        if self._serving():
            if boot_seconds is not None:
                self.configure(boot_seconds=boot_seconds)
            return self.status()
        self.down()  # a half-built lab from an earlier crash, or a `down` that did not finish
        state = st.empty_state(self.prefix)
        state["members"] = [dict(m) for m in MEMBERS]
        if boot_seconds is not None:
            state["boot_seconds"] = boot_seconds
        st.publish(state, "amphora-2026-10", ["amphora"], "v1")
        try:
            apply.lab_up(self.prefix, state["members"])
            apply.load_nft(self.prefix, render.render_nft([]))
        except CloudError:
            apply.lab_down(self.prefix, self.directory)
            raise
        self.files.create(state)
        return self.status()

    def down(self) -> dict[str, Any]:
        """Stop every process of this cloud and delete its namespaces (with them its links and nftables table)
        and its state; returns once all of it is gone, so that nothing of it is left when it returns.

        :raises CloudError: something could not be removed (one line naming it); the state is kept, so that
            another ``down`` retries.
        """
        if self.files.exists():
            # a fence first: no new operation starts, and a worker that has not begun yet exits at its start
            with contextlib.suppress(ConfigError), self.files.open(write=True) as state:
                state["stopping"] = True
        removed = apply.lab_down(self.prefix, self.directory)
        self.files.remove()
        return {"state_dir": str(self.directory), "prefix": self.prefix, "removed_namespaces": removed}

    def _serving(self) -> bool:
        """The lab is up and no ``down`` began on it."""
        if not self.files.exists() or f"{self.prefix}-router" not in apply.list_namespaces(self.prefix):
            return False
        try:
            with self.files.open(write=False) as state:
                return not state.get("stopping")
        except ConfigError:
            return False

    def status(self) -> dict[str, Any]:
        namespaces = apply.list_namespaces(self.prefix)
        if not self.files.exists():
            return {"state_dir": str(self.directory), "up": False, "namespaces": namespaces}
        with self._state(write=False) as state:
            return {
                "state_dir": str(self.directory),
                "up": f"{self.prefix}-router" in namespaces,
                "prefix": self.prefix,
                "namespaces": namespaces,
                "boot_seconds": state["boot_seconds"],
                "flush_conntrack": state["flush_conntrack"],
                "load_balancers": [
                    {"id": lb["id"], "name": lb["name"], "status": lb["provisioning_status"]}
                    for lb in state["lbs"].values()
                ],
                "floating_ips": {f["floating_ip_address"]: f["fixed_ip_address"] for f in state["fips"].values()},
                "images": [i["name"] for i in st.images_with_tag(state, "amphora")],
            }

    def amphora_log(self) -> list[dict[str, Any]]:
        """Every amphora this cloud booted: id, own address, image name, load balancer, when."""
        with self._state(write=False) as state:
            return list(state.get("amphora_log", []))

    def configure(self, *, boot_seconds: float | None = None, flush_conntrack: bool | None = None) -> None:
        with self._state() as state:
            if boot_seconds is not None:
                state["boot_seconds"] = float(boot_seconds)
            if flush_conntrack is not None:
                state["flush_conntrack"] = bool(flush_conntrack)

    def publish_image(
        self,
        name: str,
        tags: Sequence[str] = ("amphora",),
        template: str = "v2",
        *,
        fault: str | None = None,
        fault_after: float = 0.0,
    ) -> Image:
        """A newer amphora image. With ``fault`` every amphora booted from it shows it on every listener (see
        render.fault_rules): from the start, or only ``fault_after`` seconds after the amphora started."""
        if template not in render.TEMPLATES:
            raise _bad(f"unknown image template {template}")
        if fault is not None and fault not in render.FAULTS:
            raise _bad(f"unknown image fault {fault}")
        with self._state() as state:
            image = st.publish(state, name, list(tags), template, fault=fault, fault_after=fault_after)
            return from_json(Image, image)

    # --- reading --------------------------------------------------------------------------------------------

    def list_load_balancers(
        self, *, project_id: str | None = None, tags: Sequence[str] = (), tags_any: Sequence[str] = ()
    ) -> list[LBSummary]:
        with self._state(write=False) as state:
            lbs = [lb for lb in state["lbs"].values() if listed(lb, project_id, tags, tags_any)]
        return [self._summary(lb) for lb in lbs]

    def get_load_balancer(self, lb_id: str) -> LBSummary:
        with self._state(write=False) as state:
            lb = _lb(state, lb_id)
        return self._summary(lb)

    def read_graph(self, lb_id: str) -> LoadBalancer:
        with self._state(write=False) as state:
            lb = _lb(state, lb_id)
            ports = _vip_ports(lb)
            fips = [f for f in state["fips"].values() if f["port_id"] and f["port_id"] in ports]
        data = {k: v for k, v in lb.items() if k not in ("op", "vrid", "error")}
        health = self._member_health(lb)
        for pool in data["pools"]:
            for member in pool["members"]:
                member["operating_status"] = health.get(member["id"], "OFFLINE")
        data["operating_status"] = self._summary(lb).operating_status
        data["floating_ips"] = fips
        return from_json(LoadBalancer, data)

    def get_stats(self, lb_id: str) -> Stats:
        with self._state(write=False) as state:
            lb = _lb(state, lb_id)
        active = total = bytes_in = bytes_out = errors = 0
        for amphora in lb["amphorae"]:
            for row in apply.haproxy_stats(self.prefix, amphora) or []:
                if row.get("svname") == "FRONTEND":
                    active += _int(row.get("scur"))
                    total += _int(row.get("stot"))
                    bytes_in += _int(row.get("bin"))
                    bytes_out += _int(row.get("bout"))
                    errors += _int(row.get("ereq"))
        return Stats(active, total, bytes_in, bytes_out, errors)

    def list_amphorae(self, lb_id: str) -> list[Amphora]:
        with self._state(write=False) as state:
            return [from_json(Amphora, a) for a in _lb(state, lb_id)["amphorae"]]

    def _member_health(self, lb: Mapping[str, Any]) -> dict[str, str]:
        if lb["provisioning_status"] == "PENDING_CREATE":
            return {}
        for amphora in sorted(lb["amphorae"], key=lambda a: a["role"] == "BACKUP"):
            rows = apply.haproxy_stats(self.prefix, amphora)
            if rows is None:
                continue
            health = {}
            for row in rows:
                if row.get("svname") in ("FRONTEND", "BACKEND"):
                    continue
                status = row.get("status", "")
                health[row["svname"]] = (
                    "ONLINE"
                    if status.startswith("UP")
                    else "NO_MONITOR"
                    if status == "no check"
                    else "DRAINING"
                    if status in ("NOLB", "DRAIN")
                    else "OFFLINE"
                    if status.startswith("MAINT")
                    else "ERROR"
                )
            return health
        return {}

    def _summary(self, lb: Mapping[str, Any]) -> LBSummary:
        operating = lb["operating_status"]
        if lb["provisioning_status"] == "ACTIVE":
            answering = [a for a in lb["amphorae"] if apply.haproxy_running(self.prefix, a)]
            operating = "ONLINE" if len(answering) == len(lb["amphorae"]) else "DEGRADED" if answering else "OFFLINE"
        return summary_of(lb, operating_status=operating)

    # --- load balancer lifecycle ----------------------------------------------------------------------------

    def create_load_balancer(self, body: Mapping[str, Any]) -> LBSummary:
        with self._state() as state:
            lb = new_lb(state, dict(body), self.prefix, PROTOCOLS, ALGORITHMS)
            self._start_op(state, lb, "create", "PENDING_CREATE", [a["id"] for a in lb["amphorae"]])
        return self._summary(lb)

    def delete_load_balancer(self, lb_id: str, *, cascade: bool = True) -> None:
        with self._state() as state:
            lb = state["lbs"].get(lb_id)
            if lb is None or lb["provisioning_status"] == "PENDING_DELETE":
                return
            _check_mutable(lb)
            if not cascade and (lb["listeners"] or lb["pools"]):
                raise Conflict(f"load balancer {lb_id} still has children; delete with cascade", status_code=409)
            self._start_op(state, lb, "delete", "PENDING_DELETE", [])

    def rename_load_balancer(self, lb_id: str, name: str) -> None:
        with self._state() as state:
            lb = _lb(state, lb_id)
            _check_mutable(lb)
            lb["name"] = name

    def failover_load_balancer(self, lb_id: str) -> None:
        with self._state() as state:
            lb = _lb(state, lb_id)
            _check_mutable(lb)
            order = sorted(lb["amphorae"], key=lambda a: a["role"] != "BACKUP")  # standby first, like Octavia
            self._start_op(state, lb, "failover", "PENDING_UPDATE", [a["id"] for a in order])

    def failover_amphora(self, amphora_id: str) -> None:
        with self._state() as state:
            for lb in state["lbs"].values():
                if any(a["id"] == amphora_id for a in lb["amphorae"]):
                    _check_mutable(lb)
                    self._start_op(state, lb, "failover", "PENDING_UPDATE", [amphora_id])
                    return
        raise NotFound(f"amphora {amphora_id} not found", status_code=404)

    def _start_op(self, state: dict[str, Any], lb: dict[str, Any], kind: str, status: str, amps: list[str]) -> None:
        op_id = st.new_id(state)
        state["ops"][op_id] = {"kind": kind, "lb_id": lb["id"], "amphorae": amps, "spawned": time.time(), "pid": None}
        lb["op"] = op_id
        lb["provisioning_status"] = status
        # the controller runs below the data plane's priority, so its forks do not delay packets
        cmd = ["nice", "-n", "5", sys.executable, "-m", "lbswap.clouds.local.worker", str(self.directory), op_id]
        apply.spawn_detached(cmd, log=self.directory / "worker.log")

    # --- floating IPs ---------------------------------------------------------------------------------------

    def list_floating_ips(self, *, port_id: str | None = None, tag: str | None = None) -> list[FloatingIP]:
        with self._state(write=False) as state:
            return [
                from_json(FloatingIP, f)
                for f in state["fips"].values()
                if (port_id is None or f["port_id"] == port_id) and (tag is None or tag in f["tags"])
            ]

    def get_floating_ip(self, fip_id: str) -> FloatingIP:
        with self._state(write=False) as state:
            return from_json(FloatingIP, _fip(state, fip_id))

    def move_floating_ip(
        self, fip_id: str, *, port_id: str, fixed_ip_address: str | None, if_revision: int
    ) -> FloatingIP:
        with self._state() as state:
            fip = _fip(state, fip_id)
            if fip["revision_number"] != if_revision:
                raise PreconditionFailed(
                    f"floating IP {fip['floating_ip_address']} is at revision {fip['revision_number']}, "
                    f"not {if_revision}",
                    status_code=412,
                )
            port = state["ports"].get(port_id)
            if port is None:
                raise NotFound(f"port {port_id} not found", status_code=404)
            fip.update(port_id=port_id, fixed_ip_address=fixed_ip_address or port["ip"])
            fip["revision_number"] += 1
            apply.load_nft(self.prefix, render.render_nft(state["fips"].values()))  # one transaction
            if state["flush_conntrack"]:
                apply.flush_conntrack(self.prefix, fip["floating_ip_address"])
            return from_json(FloatingIP, fip)

    def create_floating_ip(self, *, floating_network_id: str, port_id: str, tags: Sequence[str]) -> FloatingIP:
        with self._state() as state:
            port = state["ports"].get(port_id)
            if port is None:
                raise NotFound(f"port {port_id} not found", status_code=404)
            taken = {f["floating_ip_address"] for f in state["fips"].values()}
            try:
                address = st.free_address(taken, st.FIP_NETWORK)
            except LookupError:
                raise CloudError("no floating IP left in 203.0.113.0/24", status_code=409) from None
            fip = {
                "id": st.new_id(state),
                "floating_ip_address": address,
                "port_id": port_id,
                "fixed_ip_address": port["ip"],
                "revision_number": 1,
                "floating_network_id": floating_network_id or st.EXTERNAL_NETWORK,
                "tags": list(tags),
                "project_id": port["project_id"],
            }
            state["fips"][fip["id"]] = fip
            apply.load_nft(self.prefix, render.render_nft(state["fips"].values()))
            return from_json(FloatingIP, fip)

    def delete_floating_ip(self, fip_id: str) -> None:
        with self._state() as state:
            if state["fips"].pop(fip_id, None) is not None:
                apply.load_nft(self.prefix, render.render_nft(state["fips"].values()))

    def probe_listener(
        self,
        address: str,
        port: int,
        protocol: str,
        *,
        path: str = "/",
        host: str | None = None,
        sni: str | None = None,
        payload: bytes | None = None,
        timeout: float = 3.0,
    ) -> ProbeResult:
        """From the lab's client namespace, through the router's floating IP translation, like every client.
        ``served_by``: the load balancer whose amphora has the address the member saw on one more new connection
        (client_probe.py), when a member answered."""
        args = [address, str(port), protocol, "--path", path, "--timeout", str(timeout)]
        args += ["--host", host] if host else []
        args += ["--sni", sni] if sni else []
        args += ["--payload-hex", payload.hex()] if payload else []
        try:
            data = json.loads(apply.client_probe(self.prefix, args, timeout + 15.0))
            result = from_json(ProbeResult, data)
        except (CloudError, ValueError) as exc:
            return ProbeResult(ok=False, error=f"could not probe from the client namespace: {exc}", reachable=False)
        peer = data.get("peer") if isinstance(data, dict) else None
        if not peer:
            return result
        at = data.get("peer_at")
        with self._state(write=False) as state:
            served_by = st.lb_of_amphora_address(state, str(peer))
        return dataclasses.replace(result, served_by=served_by, served_at=float(at) if at is not None else None)

    # --- pre-flight -----------------------------------------------------------------------------------------

    def get_quota(self, project_id: str) -> QuotaUsage:
        with self._state(write=False) as state:
            lbs = [lb for lb in state["lbs"].values() if lb["project_id"] == project_id]
            in_use = {
                "load_balancer": len(lbs),
                "listener": sum(len(lb["listeners"]) for lb in lbs),
                "pool": sum(len(lb["pools"]) for lb in lbs),
                "member": sum(len(p["members"]) for lb in lbs for p in lb["pools"]),
                "port": sum(1 for p in state["ports"].values() if p["project_id"] == project_id),
                "floatingip": sum(1 for f in state["fips"].values() if f.get("project_id") == project_id),
            }
        return QuotaUsage(limits={}, in_use=in_use)

    def subnet_free_addresses(self, subnet_id: str) -> int | None:
        if subnet_id != st.SUBNET_ID:
            raise NotFound(f"subnet {subnet_id} not found", status_code=404)
        with self._state(write=False) as state:
            return 241 - len(state["ports"])

    def can_read_secret(self, ref: str) -> bool:
        return False  # no key manager here: TLS listeners are refused at create

    def get_flavor(self, name_or_id: str) -> Flavor:
        with self._state(write=False) as state:
            for flavor in state["flavors"].values():
                if name_or_id in (flavor["id"], flavor["name"]):
                    return from_json(Flavor, flavor)
        raise NotFound(f"flavor {name_or_id} not found", status_code=404)

    def get_provider(self, name: str) -> Provider:
        if name != "amphora":
            raise NotFound(f"provider {name} not found", status_code=404)
        return Provider(name=name, listener_protocols=PROTOCOLS, lb_algorithms=ALGORITHMS)

    def list_images(self, tag: str) -> list[Image]:
        with self._state(write=False) as state:
            return [from_json(Image, i) for i in st.images_with_tag(state, tag)]

    def list_stack_resources(self) -> list[StackResource]:
        return []  # no orchestration service on the local cloud

    def service_compute_quota(self) -> QuotaUsage | None:
        return None  # namespaces, not servers: no compute quota to read


# --- helpers on the state ------------------------------------------------------------------------------------


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _refresh(state: dict[str, Any]) -> bool:
    """A load balancer whose worker died before finishing goes ERROR, as when Octavia's worker fails."""
    changed = False
    for lb in state["lbs"].values():
        op_id = lb.get("op")
        if not op_id:
            continue
        op = state["ops"].get(op_id)
        alive = op is not None and (
            apply.pid_alive(op["pid"]) if op.get("pid") else time.time() - op["spawned"] < WORKER_START_GRACE
        )
        if not alive:
            lb["provisioning_status"] = "ERROR"
            lb["operating_status"] = "ERROR"
            lb["error"] = f"worker for {op['kind'] if op else 'an operation'} died"
            lb.pop("op", None)
            state["ops"].pop(op_id, None)
            changed = True
    return changed


def _lb(state: dict[str, Any], lb_id: str) -> dict[str, Any]:
    lb = state["lbs"].get(lb_id)
    if lb is None:
        raise NotFound(f"load balancer {lb_id} not found", status_code=404)
    return lb  # type: ignore[no-any-return]


def _fip(state: dict[str, Any], fip_id: str) -> dict[str, Any]:
    fip = state["fips"].get(fip_id)
    if fip is None:
        raise NotFound(f"floating IP {fip_id} not found", status_code=404)
    return fip  # type: ignore[no-any-return]


def _check_mutable(lb: Mapping[str, Any]) -> None:
    if lb["provisioning_status"].startswith("PENDING_"):
        raise Conflict(
            f"load balancer {lb['id']} is immutable while {lb['provisioning_status']}; retry later", status_code=409
        )


def _vip_ports(lb: Mapping[str, Any]) -> set[str]:
    return {lb["vip_port_id"]}
