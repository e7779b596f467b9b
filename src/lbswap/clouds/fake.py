"""A file-backed simulator of Octavia and Neutron where lbswap depends on them, with fault and crash injection.

The whole cloud lives in one JSON state file, locked with fcntl and rewritten atomically after every
side-effecting call, so that another process (``lbswap resume`` after a crash) sees exactly what the crashed
one left. Time is simulated and stored in the file: ``clock.sleep(s)`` advances it, nothing sleeps for real.

Behaviour (what lbswap relies on):

- creates, renames, failovers and deletes put the load balancer in ``PENDING_*``; it settles ``latency``
  simulated seconds later into ``ACTIVE`` (or ``ERROR`` when a fault says so; a delete removes it);
- any change to a load balancer in ``PENDING_*`` is refused with 409 (``Conflict``);
- a fully-populated create is validated: subnet, flavor, provider protocols and algorithms, pools referenced
  by name and defined once, quotas, free addresses in the VIP subnet, a free ``vip_address``;
- floating IPs carry ``revision_number``; a move with a stale ``if_revision`` is refused with 412;
- statistics: a load balancer reached by a floating IP has ``active_connections``; once none reaches it, they
  drain to 0 over ``drain_seconds``; statistics lag one heartbeat (``stats_lag``);
- amphorae boot the newest image carrying the flavor's ``amp_image_tag`` (default ``amphora``); failover
  rebuilds them on it.

Faults (``set_faults``): ``fail_at=N`` counts every API call; at call N the call raises a 500 (``error``), or
takes effect and then raises ``CloudTimeout`` (``timeout``), or the next provisioning transition at or after
call N ends in ``ERROR`` (``error-status``). ``fail_probability`` does the same at random (seeded).
``crash_at=N``: the process exits with status 137 right after the Nth side-effecting call took effect.
Every side-effecting call is appended to ``audit`` so that tests can check the invariants afterwards.
"""

from __future__ import annotations

import copy
import fcntl
import ipaddress
import json
import os
import random
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lbswap.clouds.base import ProbeResult, pool_ref
from lbswap.clouds.base import validation_failure as _bad
from lbswap.clouds.fake_probe import FAULTS, model_probe
from lbswap.errors import (
    CloudError,
    CloudTimeout,
    ConfigError,
    Conflict,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
)
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

STATE_VERSION = 1
DEFAULT_PROJECT = "demo-project"
EXTERNAL_NETWORK = "public"
ALL_PROTOCOLS = ("HTTP", "HTTPS", "TCP", "UDP", "TERMINATED_HTTPS", "SCTP", "PROMETHEUS")
ALL_ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT")
SIDE_EFFECTS = frozenset(
    {
        "create_load_balancer",
        "delete_load_balancer",
        "rename_load_balancer",
        "failover_load_balancer",
        "failover_amphora",
        "move_floating_ip",
        "create_floating_ip",
        "delete_floating_ip",
    }
)
EXIT_CRASH = 137


def empty_state() -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "cloud_id": uuid.uuid4().hex,
        "clock": 1_800_000_000.0,
        "seq": 0,
        "latency": 2.0,
        "drain_seconds": 25.0,
        "stats_lag": 10.0,
        "calls": 0,
        "side_effects": 0,
        "faults": {},
        "audit": [],
        "history": [],
        "lbs": {},
        "fips": {},
        "ports": {},
        "subnets": {},
        "images": [],
        "flavors": {},
        "providers": {
            "amphora": {"listener_protocols": list(ALL_PROTOCOLS), "lb_algorithms": list(ALL_ALGORITHMS)},
            "ovn": {"listener_protocols": ["TCP", "UDP", "SCTP"], "lb_algorithms": ["SOURCE_IP_PORT"]},
        },
        "quotas": {},
        "unreadable_secrets": [],
    }


class _FakeClock:
    def __init__(self, cloud: FakeCloud) -> None:
        self._cloud = cloud

    def now(self) -> float:
        with self._cloud._state(write=False) as state:
            return float(state["clock"])

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._cloud._state(write=True) as state:
            state["clock"] = float(state["clock"]) + seconds


class FakeCloud:
    """The simulated cloud behind ``--backend fake:PATH``."""

    kind = "fake"

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        if not path:
            raise ConfigError("--backend fake needs a state file: fake:PATH")
        self.path = Path(path)
        if not self.path.exists():
            raise ConfigError(f"no simulated cloud at {self.path}: create it with `lbswap fake seed {self.path}`")
        self._thread_lock = threading.RLock()
        self._cache: dict[str, Any] | None = None
        self._cache_key: str | None = None
        self._gen_path = self.path.with_name(self.path.name + ".gen")
        self._depth = 0
        self._clock = _FakeClock(self)
        self._rng = random.Random(0)
        with self._state(write=False):
            pass

    # --- state file -----------------------------------------------------------------------------------

    @contextmanager
    def _state(self, *, write: bool) -> Iterator[dict[str, Any]]:
        with self._thread_lock:
            if self._depth:
                assert self._cache is not None
                yield self._cache
                return
            lock_path = self.path.with_name(self.path.name + ".lock")
            with open(lock_path, "a") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                try:
                    state = self._load()
                    self._depth += 1
                    try:
                        _settle(state)
                        yield state
                    finally:
                        self._depth -= 1
                        if write:  # also when the call failed: its counters and audit must persist
                            self._save(state)
                finally:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _load(self) -> dict[str, Any]:
        # the generation file is tiny: reading it on every call tells whether another writer changed the state
        try:
            generation = self._gen_path.read_text()
        except FileNotFoundError:
            generation = ""
        if self._cache is None or not generation or generation != self._cache_key:
            try:
                self._cache = json.loads(self.path.read_text())
            except FileNotFoundError:
                raise ConfigError(f"no simulated cloud at {self.path}") from None
            except ValueError as exc:
                raise ConfigError(f"simulated cloud {self.path} is not a state file: {exc}") from None
            self._cache_key = generation
        assert self._cache is not None
        return self._cache

    def _save(self, state: dict[str, Any]) -> None:
        state["generation"] = state.get("generation", 0) + 1
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(state, separators=(",", ":")))
        os.replace(tmp, self.path)
        generation = f"{state['generation']}:{uuid.uuid4().hex}"
        self._gen_path.write_text(generation)
        self._cache, self._cache_key = state, generation

    @contextmanager
    def _call(self, call: str, **args: Any) -> Iterator[dict[str, Any]]:
        """One API call: count it, apply faults, and for side effects persist, audit and maybe crash."""
        side_effect = call in SIDE_EFFECTS
        with self._state(write=True) as state:
            state["calls"] += 1
            faults = state["faults"]
            fault = _due_fault(state, faults, self._rng)
            if fault == "error-status":
                faults["error_status_pending"] = True
                fault = None
            if fault == "error":
                raise CloudError(f"simulated API error in {call}", status_code=500, request_id=_req(state))
            if fault == "timeout" and not side_effect:
                raise CloudTimeout(f"simulated timeout in {call}", request_id=_req(state))
            backup = {k: copy.deepcopy(state[k]) for k in ("lbs", "fips", "ports")} if side_effect else {}
            try:
                yield state
            except BaseException:
                state.update(backup)  # a refused call changes nothing
                raise
            if side_effect:
                state["side_effects"] += 1
                state["audit"].append(
                    {"n": state["side_effects"], "call_n": state["calls"], "call": call, "at": state["clock"], **args}
                )
        if side_effect and state["faults"].get("crash_at") == state["side_effects"]:
            os._exit(EXIT_CRASH)
        if fault == "timeout":
            raise CloudTimeout(f"simulated timeout in {call} (it took effect)", request_id=_req(state))

    @property
    def clock(self) -> _FakeClock:
        return self._clock

    def spec(self) -> str:
        return f"fake:{self.path}"

    def identity(self) -> str:
        with self._state(write=False) as state:
            cloud_id = state.get("cloud_id")
        if not cloud_id:
            with self._state(write=True) as state:
                cloud_id = state.setdefault("cloud_id", uuid.uuid4().hex)
        return f"fake:{cloud_id}"

    def close(self) -> None:
        self._cache = None

    # --- reading --------------------------------------------------------------------------------------

    def list_load_balancers(self, *, project_id: str | None = None) -> list[LBSummary]:
        with self._call("list_load_balancers") as state:
            return [
                _summary(lb) for lb in state["lbs"].values() if project_id is None or lb["project_id"] == project_id
            ]

    def get_load_balancer(self, lb_id: str) -> LBSummary:
        with self._call("get_load_balancer") as state:
            return _summary(_lb(state, lb_id))

    def read_graph(self, lb_id: str) -> LoadBalancer:
        with self._call("read_graph") as state:
            lb = _lb(state, lb_id)
            data = {k: v for k, v in lb.items() if not k.startswith("_")}
            data["floating_ips"] = [
                fip for fip in state["fips"].values() if fip["port_id"] in _vip_ports(lb) and fip["port_id"]
            ]
            return from_json(LoadBalancer, data)

    def get_stats(self, lb_id: str) -> Stats:
        with self._call("get_stats") as state:
            lb = _lb(state, lb_id)
            return Stats(active_connections=_active_connections(state, lb), total_connections=lb["_conns"] * 100)

    def list_amphorae(self, lb_id: str) -> list[Amphora]:
        with self._call("list_amphorae") as state:
            return [from_json(Amphora, a) for a in _lb(state, lb_id)["amphorae"]]

    # --- load balancer lifecycle ----------------------------------------------------------------------

    def create_load_balancer(self, body: Mapping[str, Any]) -> LBSummary:
        with self._call("create_load_balancer", name=body.get("name"), tags=list(body.get("tags", []))) as state:
            lb = _create(state, dict(body))
            return _summary(lb)

    def delete_load_balancer(self, lb_id: str, *, cascade: bool = True) -> None:
        with self._call("delete_load_balancer", lb_id=lb_id) as state:
            lb = state["lbs"].get(lb_id)
            if lb is None or lb["provisioning_status"] == "PENDING_DELETE":
                return
            _check_mutable(lb)
            if not cascade and (lb["listeners"] or lb["pools"]):
                raise Conflict(f"load balancer {lb_id} still has children; delete with cascade", status_code=409)
            _begin(state, lb, "PENDING_DELETE")

    def rename_load_balancer(self, lb_id: str, name: str) -> None:
        with self._call("rename_load_balancer", lb_id=lb_id, name=name) as state:
            lb = _lb(state, lb_id)
            _check_mutable(lb)
            lb["name"] = name
            _begin(state, lb, "PENDING_UPDATE")

    def failover_load_balancer(self, lb_id: str) -> None:
        with self._call("failover_load_balancer", lb_id=lb_id) as state:
            lb = _lb(state, lb_id)
            _check_mutable(lb)
            lb["_failover"] = [a["id"] for a in lb["amphorae"]]
            _begin(state, lb, "PENDING_UPDATE")

    def failover_amphora(self, amphora_id: str) -> None:
        with self._call("failover_amphora", amphora_id=amphora_id) as state:
            for lb in state["lbs"].values():
                if any(a["id"] == amphora_id for a in lb["amphorae"]):
                    _check_mutable(lb)
                    lb["_failover"] = [amphora_id]
                    _begin(state, lb, "PENDING_UPDATE")
                    return
            raise NotFound(f"amphora {amphora_id} not found", status_code=404)

    # --- floating IPs ---------------------------------------------------------------------------------

    def list_floating_ips(self, *, port_id: str | None = None, tag: str | None = None) -> list[FloatingIP]:
        with self._call("list_floating_ips") as state:
            return [
                from_json(FloatingIP, f)
                for f in state["fips"].values()
                if (port_id is None or f["port_id"] == port_id) and (tag is None or tag in f["tags"])
            ]

    def get_floating_ip(self, fip_id: str) -> FloatingIP:
        with self._call("get_floating_ip") as state:
            return from_json(FloatingIP, _fip(state, fip_id))

    def move_floating_ip(
        self, fip_id: str, *, port_id: str, fixed_ip_address: str | None, if_revision: int
    ) -> FloatingIP:
        with self._call("move_floating_ip", fip_id=fip_id, port_id=port_id, if_revision=if_revision) as state:
            fip = _fip(state, fip_id)
            if fip["revision_number"] != if_revision:
                raise PreconditionFailed(
                    f"floating IP {fip['floating_ip_address']} is at revision {fip['revision_number']}, "
                    f"not {if_revision}",
                    status_code=412,
                    request_id=_req(state),
                )
            port = state["ports"].get(port_id)
            if port is None:
                raise NotFound(f"port {port_id} not found", status_code=404)
            _move(state, fip, port_id, fixed_ip_address or port["ip"])
            return from_json(FloatingIP, fip)

    def create_floating_ip(self, *, floating_network_id: str, port_id: str, tags: Sequence[str]) -> FloatingIP:
        with self._call("create_floating_ip", port_id=port_id, tags=list(tags)) as state:
            port = state["ports"].get(port_id)
            if port is None:
                raise NotFound(f"port {port_id} not found", status_code=404)
            fip = _new_fip(state, port_id, port["ip"], list(tags), port["project_id"])
            return from_json(FloatingIP, fip)

    def delete_floating_ip(self, fip_id: str) -> None:
        with self._call("delete_floating_ip", fip_id=fip_id) as state:
            state["fips"].pop(fip_id, None)

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
        """Modeled from the state (clouds/fake_probe.py): no packet is sent, and no API call is counted (the
        injected API faults do not apply to traffic)."""
        with self._state(write=False) as state:
            return model_probe(state, address, port, protocol, timeout=timeout)

    # --- pre-flight -----------------------------------------------------------------------------------

    def get_quota(self, project_id: str) -> QuotaUsage:
        with self._call("get_quota") as state:
            return QuotaUsage(limits=dict(state["quotas"].get(project_id, {})), in_use=_usage(state, project_id))

    def subnet_free_addresses(self, subnet_id: str) -> int | None:
        with self._call("subnet_free_addresses") as state:
            subnet = state["subnets"].get(subnet_id)
            if subnet is None:
                raise NotFound(f"subnet {subnet_id} not found", status_code=404)
            free: int = subnet["capacity"] - _subnet_used(state, subnet_id)
            return free

    def can_read_secret(self, ref: str) -> bool:
        with self._call("can_read_secret") as state:
            return ref not in state["unreadable_secrets"]

    def get_flavor(self, name_or_id: str) -> Flavor:
        with self._call("get_flavor") as state:
            for flavor in state["flavors"].values():
                if name_or_id in (flavor["id"], flavor["name"]):
                    return from_json(Flavor, flavor)
            raise NotFound(f"flavor {name_or_id} not found", status_code=404)

    def get_provider(self, name: str) -> Provider:
        with self._call("get_provider") as state:
            provider = state["providers"].get(name)
            if provider is None:
                raise NotFound(f"provider {name} not found", status_code=404)
            return Provider(
                name=name,
                listener_protocols=tuple(provider["listener_protocols"]),
                lb_algorithms=tuple(provider["lb_algorithms"]),
            )

    def list_images(self, tag: str) -> list[Image]:
        with self._call("list_images") as state:
            return [from_json(Image, i) for i in _images(state, tag)]

    def list_stack_resources(self) -> list[StackResource]:
        with self._call("list_stack_resources") as state:
            return [from_json(StackResource, r) for r in state.get("stacks", [])]

    def service_compute_quota(self) -> QuotaUsage | None:
        with self._call("service_compute_quota") as state:
            quota = state.get("service_quota")
            return QuotaUsage(limits=dict(quota["limits"]), in_use=dict(quota["in_use"])) if quota else None

    # --- operator and test helpers (not part of the Cloud protocol) -----------------------------------

    def publish_image(
        self, name: str, tags: Sequence[str] = ("amphora",), *, fault: str | None = None, fault_after: float = 0.0
    ) -> Image:
        """A newer image; with ``fault`` every amphora booted from it shows that fault to the modeled probe
        (from ``fault_after`` seconds after it booted)."""
        if fault is not None and fault not in FAULTS:
            raise _bad(f"unknown image fault {fault}")
        with self._state(write=True) as state:
            image = _publish(state, name, list(tags))
            if fault:
                image.update(fault=fault, fault_after=fault_after)
            return from_json(Image, image)

    def mutate(self, fn: Callable[[dict[str, Any]], Any]) -> Any:
        """Change the state directly (tests and seeding): ``fn(state)`` under the lock, then persist."""
        with self._state(write=True) as state:
            return fn(state)

    def snapshot_state(self) -> dict[str, Any]:
        with self._state(write=False) as state:
            return copy.deepcopy(state)

    def move_floating_ip_behind_our_back(self, fip_id: str, port_id: str | None) -> None:
        """Someone else moves a floating IP (a concurrent operator): lbswap must notice, never overwrite."""

        def move(state: dict[str, Any]) -> None:
            fip = _fip(state, fip_id)
            _move(state, fip, port_id, state["ports"][port_id]["ip"] if port_id else None)

        self.mutate(move)


# --- the state machine -------------------------------------------------------------------------------------


def _req(state: dict[str, Any]) -> str:
    return f"req-{state['calls']:06d}"


def _new_id(state: dict[str, Any], kind: str) -> str:
    state["seq"] += 1
    return str(uuid.UUID(int=(zlib.crc32(kind.encode()) & 0xFFFF) << 64 | state["seq"]))


def _due_fault(state: dict[str, Any], faults: dict[str, Any], rng: random.Random) -> str | None:
    kind = faults.get("fail_kind", "error")
    if faults.get("fail_at") == state["calls"]:
        return str(kind)
    probability = faults.get("fail_probability")
    if probability:
        rng.seed(f"{faults.get('seed', 0)}:{state['calls']}")
        if rng.random() < float(probability):
            return str(kind)
    return None


def _lb(state: dict[str, Any], lb_id: str) -> dict[str, Any]:
    lb = state["lbs"].get(lb_id)
    if lb is None:
        raise NotFound(f"load balancer {lb_id} not found", status_code=404, request_id=_req(state))
    return lb  # type: ignore[no-any-return]


def _fip(state: dict[str, Any], fip_id: str) -> dict[str, Any]:
    fip = state["fips"].get(fip_id)
    if fip is None:
        raise NotFound(f"floating IP {fip_id} not found", status_code=404, request_id=_req(state))
    return fip  # type: ignore[no-any-return]


def _summary(lb: dict[str, Any]) -> LBSummary:
    return LBSummary(
        id=lb["id"],
        name=lb["name"],
        provisioning_status=lb["provisioning_status"],
        operating_status=lb["operating_status"],
        vip_address=lb["vip_address"],
        vip_port_id=lb["vip_port_id"],
        tags=tuple(lb["tags"]),
        project_id=lb["project_id"],
        provider=lb["provider"],
        flavor_id=lb["flavor_id"],
    )


def _check_mutable(lb: dict[str, Any]) -> None:
    if lb["provisioning_status"].startswith("PENDING_"):
        raise Conflict(
            f"load balancer {lb['id']} is immutable while {lb['provisioning_status']}; retry later", status_code=409
        )


def _begin(state: dict[str, Any], lb: dict[str, Any], pending: str) -> None:
    lb["provisioning_status"] = pending
    lb["_until"] = state["clock"] + state["latency"]
    if state["faults"].pop("error_status_pending", False):
        lb["_error"] = True


def _settle(state: dict[str, Any]) -> None:
    """Finish every transition whose latency has passed (Octavia's worker, lazily)."""
    now = state["clock"]
    for lb in list(state["lbs"].values()):
        until = lb.get("_until")
        if until is None or until > now:
            continue
        lb.pop("_until")
        failed = lb.pop("_error", False)
        status = lb["provisioning_status"]
        if status == "PENDING_DELETE" and not failed:
            state.setdefault("history", []).append({"at": until, "lb": lb["id"], "status": "DELETED"})
            _remove(state, lb)
            continue
        if failed:
            state.setdefault("history", []).append({"at": until, "lb": lb["id"], "status": "ERROR"})
            lb["provisioning_status"] = "ERROR"
            lb["operating_status"] = "ERROR"
            lb.pop("_failover", None)
            continue
        for amp_id in lb.pop("_failover", []):
            _rebuild_amphora(state, lb, amp_id)
        lb["provisioning_status"] = "ACTIVE"
        lb["operating_status"] = "ONLINE"
        state.setdefault("history", []).append({"at": until, "lb": lb["id"], "status": "ACTIVE"})
        for pool in lb["pools"]:
            for member in pool["members"]:
                member["operating_status"] = "ONLINE" if pool.get("healthmonitor") else "NO_MONITOR"


def _remove(state: dict[str, Any], lb: dict[str, Any]) -> None:
    ports = _vip_ports(lb)
    for fip in state["fips"].values():
        if fip["port_id"] in ports:  # Neutron disassociates a floating IP whose port goes away
            fip["port_id"] = None
            fip["fixed_ip_address"] = None
            fip["revision_number"] += 1
    for port in ports:
        state["ports"].pop(port, None)
    del state["lbs"][lb["id"]]


def _vip_ports(lb: dict[str, Any]) -> set[str]:
    ports = {lb["vip_port_id"]}
    ports.update(v["port_id"] for v in lb["additional_vips"] if v.get("port_id"))
    return ports


def _images(state: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    tagged = [i for i in state["images"] if tag in i["tags"]]
    return sorted(tagged, key=lambda i: i["created_at"], reverse=True)


def _publish(state: dict[str, Any], name: str, tags: list[str]) -> dict[str, Any]:
    created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(state["clock"])) + f".{state['seq']:06d}"
    image = {"id": _new_id(state, "image"), "name": name, "tags": tags, "created_at": created}
    state["images"].append(image)
    return image


def _boot_image(state: dict[str, Any], lb: dict[str, Any]) -> str:
    tag = "amphora"
    if lb.get("flavor_id"):
        tag = state["flavors"][lb["flavor_id"]].get("amp_image_tag") or tag
    images = _images(state, tag)
    return str(images[0]["id"]) if images else "no-image"


def _rebuild_amphora(state: dict[str, Any], lb: dict[str, Any], amp_id: str) -> None:
    for amp in lb["amphorae"]:
        if amp["id"] == amp_id:
            amp["id"] = _new_id(state, "amphora")
            amp["compute_id"] = _new_id(state, "compute")
            amp["image_id"] = _boot_image(state, lb)
            amp["booted_at"] = state["clock"]


def _subnet_used(state: dict[str, Any], subnet_id: str) -> int:
    used = sum(1 for p in state["ports"].values() if p["subnet_id"] == subnet_id)
    return used + int(state["subnets"][subnet_id].get("reserved", 0))


def _new_port(state: dict[str, Any], subnet_id: str, project_id: str, address: str | None) -> dict[str, Any]:
    subnet = state["subnets"].get(subnet_id)
    if subnet is None:
        raise CloudError(f"VIP subnet {subnet_id} not found", status_code=400)
    taken = {p["ip"] for p in state["ports"].values() if p["subnet_id"] == subnet_id}
    if address is not None:
        if address in taken:
            raise Conflict(f"IP address {address} is already allocated in subnet {subnet_id}", status_code=409)
    else:
        if _subnet_used(state, subnet_id) >= subnet["capacity"]:
            raise CloudError(f"no more IP addresses available on subnet {subnet_id}", status_code=409)
        network = ipaddress.ip_network(subnet["cidr"])
        address = next(str(h) for h in network.hosts() if str(h) not in taken and not str(h).endswith(".1"))
    port = {"id": _new_id(state, "port"), "subnet_id": subnet_id, "ip": address, "project_id": project_id}
    state["ports"][port["id"]] = port
    return port


def _new_fip(
    state: dict[str, Any], port_id: str | None, fixed: str | None, tags: list[str], project_id: str
) -> dict[str, Any]:
    n = len(state["fips"]) + state["seq"]
    fip = {
        "id": _new_id(state, "fip"),
        "floating_ip_address": f"203.0.{(n // 250) % 250}.{n % 250 + 2}",
        "port_id": port_id,
        "fixed_ip_address": fixed,
        "revision_number": 1,
        "floating_network_id": EXTERNAL_NETWORK,
        "tags": tags,
        "project_id": project_id,
    }
    state["fips"][fip["id"]] = fip
    return fip


def _move(state: dict[str, Any], fip: dict[str, Any], port_id: str | None, fixed: str | None) -> None:
    for lb in state["lbs"].values():
        if fip["port_id"] in _vip_ports(lb) and port_id not in _vip_ports(lb):
            lb["_drain_from"] = state["clock"]
    fip["port_id"] = port_id
    fip["fixed_ip_address"] = fixed
    fip["revision_number"] += 1


def _active_connections(state: dict[str, Any], lb: dict[str, Any]) -> int:
    """Connections reach a load balancer through its floating IPs; after the last one left, they drain."""
    ports = _vip_ports(lb)
    if any(f["port_id"] in ports for f in state["fips"].values()):
        return int(lb["_conns"])
    start = lb.get("_drain_from")
    if start is None:
        return 0
    seen_at = state["clock"] - state["stats_lag"]
    left = 1.0 - (seen_at - start) / max(state["drain_seconds"], 1e-9)
    return max(0, min(int(lb["_conns"]), int(lb["_conns"] * left + 0.999)))


def _usage(state: dict[str, Any], project_id: str) -> dict[str, int]:
    lbs = [lb for lb in state["lbs"].values() if lb["project_id"] == project_id]
    return {
        "load_balancer": len(lbs),
        "listener": sum(len(lb["listeners"]) for lb in lbs),
        "pool": sum(len(lb["pools"]) for lb in lbs),
        "member": sum(len(p["members"]) for lb in lbs for p in lb["pools"]),
        "health_monitor": sum(1 for lb in lbs for p in lb["pools"] if p.get("healthmonitor")),
        "l7policy": sum(len(li["l7policies"]) for lb in lbs for li in lb["listeners"]),
        "port": sum(1 for p in state["ports"].values() if p["project_id"] == project_id),
        "floatingip": sum(1 for f in state["fips"].values() if f.get("project_id") == project_id),
    }


# --- fully-populated create ----------------------------------------------------------------------------------


def _create(state: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    project_id = body.get("project_id") or DEFAULT_PROJECT
    subnet_id = body.get("vip_subnet_id")
    if not subnet_id or subnet_id not in state["subnets"]:
        raise _bad(f"VIP subnet {subnet_id} not found")
    flavor_id = body.get("flavor_id")
    topology = "SINGLE"
    if flavor_id:
        flavor = state["flavors"].get(flavor_id)
        if flavor is None:
            raise _bad(f"flavor {flavor_id} not found")
        topology = flavor.get("topology") or "SINGLE"
    provider_name = body.get("provider", "amphora")
    provider = state["providers"].get(provider_name)
    if provider is None:
        raise _bad(f"provider {provider_name} not found")
    pools, names = _pools_from_body(state, body.get("pools", []), provider)
    listeners = [_listener_from_body(state, li, names, provider) for li in body.get("listeners", [])]
    lb_id = _new_id(state, "lb")
    _check_quota(state, project_id, listeners, pools)
    port = _new_port(state, subnet_id, project_id, body.get("vip_address"))
    additional = []
    for extra in body.get("additional_vips", []):
        extra_port = _new_port(state, extra["subnet_id"], project_id, extra.get("ip_address"))
        additional.append(
            {"subnet_id": extra["subnet_id"], "ip_address": extra_port["ip"], "port_id": extra_port["id"]}
        )
    lb: dict[str, Any] = {
        "id": lb_id,
        "name": body.get("name", ""),
        "description": body.get("description", ""),
        "project_id": project_id,
        "vip_subnet_id": subnet_id,
        "vip_network_id": body.get("vip_network_id") or state["subnets"][subnet_id]["network_id"],
        "vip_address": port["ip"],
        "vip_port_id": port["id"],
        "vip_qos_policy_id": body.get("vip_qos_policy_id"),
        "additional_vips": additional,
        "availability_zone": body.get("availability_zone"),
        "flavor_id": flavor_id,
        "provider": provider_name,
        "topology": topology,
        "admin_state_up": body.get("admin_state_up", True),
        "vip_sg_ids": body.get("vip_sg_ids"),
        "tags": list(body.get("tags", [])),
        "provisioning_status": "PENDING_CREATE",
        "operating_status": "OFFLINE",
        "listeners": listeners,
        "pools": pools,
        "amphorae": [],
        "_conns": 0,
    }
    state["lbs"][lb_id] = lb
    roles = ["MASTER", "BACKUP"] if topology == "ACTIVE_STANDBY" else ["STANDALONE"]
    if provider_name == "amphora":
        image = _boot_image(state, lb)
        lb["amphorae"] = [
            {
                "id": _new_id(state, "amphora"),
                "role": r,
                "image_id": image,
                "status": "ALLOCATED",
                "compute_id": "",
                "booted_at": state["clock"],
            }
            for r in roles
        ]
    _begin(state, lb, "PENDING_CREATE")
    return lb


def _check_quota(state: dict[str, Any], project_id: str, listeners: list[Any], pools: list[Any]) -> None:
    limits = state["quotas"].get(project_id, {})
    usage = _usage(state, project_id)
    wanted = {
        "load_balancer": 1,
        "listener": len(listeners),
        "pool": len(pools),
        "member": sum(len(p["members"]) for p in pools),
        "port": 1,
    }
    for kind, n in wanted.items():
        limit = limits.get(kind, -1)
        if limit >= 0 and usage.get(kind, 0) + n > limit:
            raise QuotaExceeded(f"quota exceeded for {kind} in project {project_id}", status_code=403)


def _pools_from_body(
    state: dict[str, Any], bodies: list[dict[str, Any]], provider: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    pools, names = [], {}
    for body in bodies:
        name = body.get("name")
        if not name:
            raise _bad("pools in a fully-populated create must be named")
        if name in names:
            raise _bad(f"pool name {name} is defined twice")
        if body.get("lb_algorithm") not in provider["lb_algorithms"]:
            raise _bad(f"the provider does not support lb_algorithm {body.get('lb_algorithm')}")
        pool = {k: v for k, v in body.items() if k not in ("members", "healthmonitor")}
        pool["id"] = _new_id(state, "pool")
        pool["members"] = [
            {**m, "id": _new_id(state, "member"), "operating_status": "OFFLINE"} for m in body.get("members", [])
        ]
        if body.get("healthmonitor"):
            pool["healthmonitor"] = {**body["healthmonitor"], "id": _new_id(state, "hm")}
        names[name] = pool["id"]
        pools.append(pool)
    return pools, names


def _listener_from_body(
    state: dict[str, Any], body: dict[str, Any], names: dict[str, str], provider: dict[str, Any]
) -> dict[str, Any]:
    if body.get("protocol") not in provider["listener_protocols"]:
        raise _bad(f"the provider does not support listener protocol {body.get('protocol')}")
    for ref in [body.get("default_tls_container_ref"), *body.get("sni_container_refs", [])]:
        if ref and ref in state["unreadable_secrets"]:
            raise _bad(f"could not retrieve certificate {ref}")
    listener = {k: v for k, v in body.items() if k not in ("default_pool", "l7policies")}
    listener["id"] = _new_id(state, "listener")
    listener["default_pool_id"] = pool_ref(names, body.get("default_pool"))
    policies = []
    for p in body.get("l7policies", []):
        policy = {k: v for k, v in p.items() if k not in ("redirect_pool", "rules")}
        policy["id"] = _new_id(state, "l7policy")
        policy["redirect_pool_id"] = pool_ref(names, p.get("redirect_pool"))
        policy["rules"] = [{**r, "id": _new_id(state, "l7rule")} for r in p.get("rules", [])]
        policies.append(policy)
    listener["l7policies"] = policies
    return listener


# --- seeding -----------------------------------------------------------------------------------------------


def _base_state() -> dict[str, Any]:
    state = empty_state()
    state["subnets"] = {
        "subnet-tenant": {"network_id": "net-tenant", "cidr": "10.0.0.0/22", "capacity": 1000, "reserved": 0},
        "subnet-extra": {"network_id": "net-extra", "cidr": "10.1.0.0/22", "capacity": 1000, "reserved": 0},
    }
    state["flavors"] = {
        "flavor-single": {"id": "flavor-single", "name": "single", "provider": "amphora", "topology": "SINGLE"},
        "flavor-ha": {"id": "flavor-ha", "name": "ha", "provider": "amphora", "topology": "ACTIVE_STANDBY"},
    }
    state["quotas"] = {}
    old = _publish(state, "amphora-2026-10", ["amphora"])
    old["created_at"] = "2026-10-01T00:00:00"
    return state


def _write_new(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(state, separators=(",", ":")))
    os.replace(tmp, target)
    target.with_name(target.name + ".gen").write_text(f"seed:{uuid.uuid4().hex}")


def _settle_now(state: dict[str, Any]) -> None:
    for lb in state["lbs"].values():
        lb["_until"] = state["clock"]
    _settle(state)


def sample_body(rng: random.Random, index: int, *, topology: str, with_l7: bool) -> dict[str, Any]:
    """A varied, realistic load balancer graph as a fully-populated create body."""
    members = [
        {"address": f"10.0.{index % 4}.{10 + j}", "protocol_port": 8080, "weight": 1 + j, "name": f"web-{j}"}
        for j in range(rng.randint(1, 3))
    ]
    if rng.random() < 0.3:
        members.append({"address": f"10.0.{index % 4}.99", "protocol_port": 8080, "backup": True, "name": "spare"})
    pools: list[dict[str, Any]] = [
        {
            "name": "web",
            "protocol": "HTTP",
            "lb_algorithm": rng.choice(["ROUND_ROBIN", "LEAST_CONNECTIONS"]),
            "members": members,
            "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3, "url_path": "/healthz"},
            "session_persistence": {"type": "HTTP_COOKIE"} if rng.random() < 0.3 else None,
        }
    ]
    listeners: list[dict[str, Any]] = [
        {
            "name": "http",
            "protocol": "HTTP",
            "protocol_port": 80,
            "default_pool": {"name": "web"},
            "timeout_client_data": rng.choice([50000, 120000]),
            "allowed_cidrs": ["0.0.0.0/0"] if rng.random() < 0.5 else None,
            "insert_headers": {"X-Forwarded-For": "true"},
        }
    ]
    if with_l7:
        pools.append({"name": "api", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": members[:1]})
        listeners[0]["l7policies"] = [
            {
                "name": "to-api",
                "action": "REDIRECT_TO_POOL",
                "position": 1,
                "redirect_pool": {"name": "api"},
                "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"}],
            }
        ]
    if rng.random() < 0.3:
        pools.append({"name": "tcp", "protocol": "TCP", "lb_algorithm": "SOURCE_IP", "members": members})
        listeners.append({"name": "tcp", "protocol": "TCP", "protocol_port": 5432, "default_pool": {"name": "tcp"}})
    for pool in pools:
        if pool.get("session_persistence") is None:
            pool.pop("session_persistence", None)
    return {
        "name": f"web-{index:03d}",
        "description": f"sample load balancer {index}",
        "project_id": DEFAULT_PROJECT,
        "vip_subnet_id": "subnet-tenant",
        "flavor_id": "flavor-ha" if topology == "ACTIVE_STANDBY" else "flavor-single",
        "provider": "amphora",
        "tags": ["env=prod"] if index % 2 else ["env=staging"],
        "listeners": listeners,
        "pools": pools,
    }


def seed_sample(path: str | os.PathLike[str], n: int, seed: int = 0) -> list[str]:
    """A new simulated cloud with ``n`` varied load balancers on an old image; returns their ids.

    Mix: most SINGLE with a floating IP, some ACTIVE_STANDBY with one, and a few without any floating IP.
    """
    rng = random.Random(seed)
    state = _base_state()
    ids = []
    for index in range(n):
        kind = index % 10
        topology = "ACTIVE_STANDBY" if kind in (6, 7, 8) else "SINGLE"
        body = sample_body(rng, index, topology=topology, with_l7=kind in (1, 4, 7))
        lb = _create(state, body)
        lb["_conns"] = rng.randint(1, 20)
        if kind not in (8, 9):
            _new_fip(state, lb["vip_port_id"], lb["vip_address"], [], lb["project_id"])
        ids.append(lb["id"])
    _settle_now(state)
    _write_new(path, state)
    return ids


def seed_from_snapshot(path: str | os.PathLike[str], graphs: Sequence[LoadBalancer]) -> list[str]:
    """A new simulated cloud holding the load balancers of an ``lbswap snapshot`` (same ids, names, graphs
    and floating IP addresses), so an operator can rehearse a campaign on a copy of their own."""
    from lbswap.clone import build_clone_body  # the create body is exactly what a clone needs

    state = _base_state()
    ids = []
    for graph in graphs:
        for subnet_id in [graph.vip_subnet_id, *(v.subnet_id for v in graph.additional_vips)]:
            state["subnets"].setdefault(
                subnet_id,
                {"network_id": graph.vip_network_id or "net-" + subnet_id, "cidr": "10.9.0.0/16", "capacity": 60000},
            )
        if graph.flavor_id and graph.flavor_id not in state["flavors"]:
            state["flavors"][graph.flavor_id] = {
                "id": graph.flavor_id,
                "name": graph.flavor_id,
                "provider": graph.provider,
                "topology": graph.topology,
            }
        state["providers"].setdefault(graph.provider, state["providers"]["amphora"])
        body = build_clone_body(graph, campaign_id="seed", name=graph.name, vip_address=graph.vip_address)
        body["tags"] = list(graph.tags)
        body["project_id"] = graph.project_id or DEFAULT_PROJECT
        lb = _create(state, body)
        # keep the operator's ids, so that their runbooks and selections work on the copy
        del state["lbs"][lb["id"]]
        lb["id"] = graph.id
        state["lbs"][graph.id] = lb
        lb["_conns"] = 5
        for fip in graph.floating_ips:
            record = _new_fip(state, lb["vip_port_id"], lb["vip_address"], list(fip.tags), lb["project_id"])
            del state["fips"][record["id"]]
            record.update(id=fip.id, floating_ip_address=fip.floating_ip_address)
            state["fips"][fip.id] = record
        ids.append(graph.id)
    _settle_now(state)
    _write_new(path, state)
    return ids


def set_faults(
    path: str | os.PathLike[str],
    *,
    latency: float | None = None,
    fail_at: int | None = None,
    fail_kind: str = "error",
    fail_probability: float | None = None,
    crash_at: int | None = None,
    drain_seconds: float | None = None,
    seed: int = 0,
) -> None:
    """Configure faults (counted from now: the call and side-effect counters restart at 0)."""
    cloud = FakeCloud(path)

    def apply(state: dict[str, Any]) -> None:
        if latency is not None:
            state["latency"] = latency
        if drain_seconds is not None:
            state["drain_seconds"] = drain_seconds
        faults = {"fail_kind": fail_kind, "seed": seed}
        if fail_at is not None:
            faults["fail_at"] = fail_at
        if fail_probability is not None:
            faults["fail_probability"] = fail_probability
        if crash_at is not None:
            faults["crash_at"] = crash_at
        state["faults"] = faults
        state["calls"] = 0
        state["side_effects"] = 0

    cloud.mutate(apply)


def clear_faults(path: str | os.PathLike[str]) -> None:
    FakeCloud(path).mutate(lambda state: state.update(faults={}))
