"""The simulated cloud behind ``--backend fake:PATH``: the Cloud protocol over the state file.

Every API call is counted and meets the faults set for it; every side-effecting call is appended to
``audit`` so that tests can check the invariants afterwards, and a refused one changes nothing.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lbswap.clouds.base import ProbeResult, validation_failure
from lbswap.clouds.fake.clock import FakeClock
from lbswap.clouds.fake.faults import EXIT_CRASH, SIDE_EFFECTS, due_fault, read_fails
from lbswap.clouds.fake.neutron import active_connections, fips_of, get_fip, move, new_fip, subnet_used
from lbswap.clouds.fake.octavia import (
    begin,
    check_mutable,
    create,
    get_lb,
    images,
    limits,
    publish,
    settle,
    summary,
    usage,
)
from lbswap.clouds.fake.probe import FAULTS, model_probe
from lbswap.clouds.fake.store import Session, open_db, request_id, unusable
from lbswap.errors import CloudError, CloudTimeout, ConfigError, NotFound, PreconditionFailed
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


class FakeCloud:
    """The simulated cloud behind ``--backend fake:PATH``."""

    kind = "fake"

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        if not path:
            raise ConfigError("--backend fake needs a state file: fake:PATH")
        self.path = Path(path)
        self._db: sqlite3.Connection | None = open_db(self.path)
        self._lock = threading.RLock()
        self._session: Session | None = None
        self._clock = FakeClock(self._now, self._advance)
        self._rng = random.Random(0)
        self._summaries: dict[str, LBSummary] = {}  # brief text -> summary: a listing parses only what changed
        self._by_tag: dict[str, dict[str, LBSummary]] = {}  # the same, per tag listed

    # --- state ----------------------------------------------------------------------------------------

    @contextmanager
    def _state(self, *, write: bool) -> Iterator[Session]:
        """One transaction, with Octavia's pending transitions settled (nested uses share it).

        Committed when ``write``, also when the body raised: a failed call's counters and audit must persist.
        """
        with self._lock:
            if self._session is not None:
                yield self._session
                return
            if self._db is None:
                self._db = open_db(self.path)
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                session = Session(db)
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise unusable(self.path, exc) from None
            self._session = session
            try:
                settle(session)
                yield session
            except sqlite3.Error as exc:
                raise unusable(self.path, exc) from None
            finally:
                self._session = None
                self._end(db, session, write=write)

    def _end(self, db: sqlite3.Connection, session: Session, *, write: bool) -> None:
        try:
            if write:
                session["generation"] = int(session.get("generation", 0)) + 1  # how often the cloud was written
                session.commit()
            else:
                db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise unusable(self.path, exc) from None

    def _now(self) -> float:
        with self._lock:
            if self._session is not None:
                return float(self._session["clock"])
            if self._db is None:
                self._db = open_db(self.path)
            try:  # one statement is one consistent read: no transaction, no settling needed to tell the time
                row = self._db.execute("SELECT value FROM meta WHERE key = 'clock'").fetchone()
            except sqlite3.Error as exc:
                raise unusable(self.path, exc) from None
            return float(json.loads(row[0]))

    def _advance(self, seconds: float) -> None:
        with self._state(write=True) as state:
            state["clock"] = float(state["clock"]) + seconds

    @contextmanager
    def _call(self, call: str, **args: Any) -> Iterator[Session]:
        """One API call: count it, apply faults, and for side effects persist, audit and maybe crash."""
        side_effect = call in SIDE_EFFECTS
        with self._state(write=True) as state:
            state["calls"] += 1
            fault = due_fault(state, self._rng)
            if fault == "error-status":
                state["faults"]["error_status_pending"] = True
                fault = None
            if fault == "error":
                raise CloudError(f"simulated API error in {call}", status_code=500, request_id=request_id(state))
            if fault == "timeout" and not side_effect:
                raise CloudTimeout(f"simulated timeout in {call}", request_id=request_id(state))
            if not side_effect and read_fails(state, self._rng):
                raise CloudError(
                    f"simulated 503 Service Unavailable in {call}", status_code=503, request_id=request_id(state)
                )
            if not side_effect:
                yield state
                return
            state.savepoint()
            try:
                yield state
            except BaseException:
                state.rollback_to_savepoint()  # a refused call changes nothing
                raise
            state.release_savepoint()
            if side_effect:
                state["side_effects"] += 1
                state["audit"].append(
                    {"n": state["side_effects"], "call_n": state["calls"], "call": call, "at": state["clock"], **args}
                )
        if side_effect and state["faults"].get("crash_at") == state["side_effects"]:
            os._exit(EXIT_CRASH)
        if fault == "timeout":
            raise CloudTimeout(f"simulated timeout in {call} (it took effect)", request_id=request_id(state))

    @property
    def clock(self) -> FakeClock:
        return self._clock

    def spec(self) -> str:
        return f"fake:{self.path}"

    def identity(self) -> str:
        """Which cloud this is, whatever path it is opened by: ``fake:<id written at seed>``.

        A copy of the file is the same cloud (it has the same id); a new seed is another. A state file from
        before identities gets one here, written at once so that every later reader sees the same.
        """
        with self._state(write=False) as state:
            cloud_id = state.get("cloud_id")
        if not cloud_id:
            with self._state(write=True) as state:
                cloud_id = state.setdefault("cloud_id", uuid.uuid4().hex)
        return f"fake:{cloud_id}"

    def close(self) -> None:
        """Close the database connection; a later call opens it again."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --- reading --------------------------------------------------------------------------------------

    def list_load_balancers(
        self, *, project_id: str | None = None, tags: Sequence[str] = (), tags_any: Sequence[str] = ()
    ) -> list[LBSummary]:
        with self._call("list_load_balancers") as state:
            if tags_any:  # Octavia's tags-any: the records of those tags (index), each parsed (a few)
                texts = state["lbs"].brief_texts(("lb.tag", ""), any_of=tags_any)
                found = [summary(json.loads(t)) for t in texts]
            elif tags:  # Octavia filters by tag: read only the records of the first tag (index), not the cloud
                known = self._by_tag.pop(tags[0], {})
                texts = state["lbs"].brief_texts(("lb.tag", tags[0]))
                self._by_tag[tags[0]] = {t: known.get(t) or summary(json.loads(t)) for t in texts}
                found = list(self._by_tag[tags[0]].values())
                if len(self._by_tag) > 16:  # the tags listed last (a campaign's marker is listed every interval)
                    del self._by_tag[next(iter(self._by_tag))]
            else:
                known, self._summaries = self._summaries, {}
                for text in state["lbs"].brief_texts():
                    self._summaries[text] = known.get(text) or summary(json.loads(text))
                found = list(self._summaries.values())
            wanted, some = set(tags), set(tags_any)
            return [
                lb
                for lb in found
                if (project_id is None or lb.project_id == project_id)
                and wanted.issubset(lb.tags)
                and (not some or not some.isdisjoint(lb.tags))
            ]

    def get_load_balancer(self, lb_id: str) -> LBSummary:
        with self._call("get_load_balancer") as state:
            return summary(get_lb(state, lb_id))

    def read_graph(self, lb_id: str) -> LoadBalancer:
        with self._call("read_graph") as state:
            lb = get_lb(state, lb_id)
            data = {k: v for k, v in lb.items() if not k.startswith("_")}
            data["floating_ips"] = fips_of(state, lb)
            return from_json(LoadBalancer, data)

    def get_stats(self, lb_id: str) -> Stats:
        with self._call("get_stats") as state:
            lb = get_lb(state, lb_id)
            return Stats(active_connections=active_connections(state, lb), total_connections=lb["_conns"] * 100)

    def list_amphorae(self, lb_id: str) -> list[Amphora]:
        with self._call("list_amphorae") as state:
            return [from_json(Amphora, a) for a in get_lb(state, lb_id)["amphorae"]]

    # --- load balancer lifecycle ----------------------------------------------------------------------

    def create_load_balancer(self, body: Mapping[str, Any]) -> LBSummary:
        with self._call("create_load_balancer", name=body.get("name"), tags=list(body.get("tags", []))) as state:
            lb = create(state, dict(body))
            return summary(lb)

    def delete_load_balancer(self, lb_id: str, *, cascade: bool = True) -> None:
        with self._call("delete_load_balancer", lb_id=lb_id) as state:
            lb = state["lbs"].get(lb_id)
            if lb is None or lb["provisioning_status"] == "PENDING_DELETE":
                return
            if not cascade and (lb["listeners"] or lb["pools"]):  # Octavia: a 400, checked before the status
                raise validation_failure(f"Cannot delete Load Balancer {lb_id} - it has children")
            check_mutable(lb)
            begin(state, lb, "PENDING_DELETE")

    def rename_load_balancer(self, lb_id: str, name: str) -> None:
        with self._call("rename_load_balancer", lb_id=lb_id, name=name) as state:
            lb = get_lb(state, lb_id)
            check_mutable(lb)
            lb["name"] = name
            begin(state, lb, "PENDING_UPDATE")

    def failover_load_balancer(self, lb_id: str) -> None:
        with self._call("failover_load_balancer", lb_id=lb_id) as state:
            lb = get_lb(state, lb_id)
            check_mutable(lb)
            lb["_failover"] = [a["id"] for a in lb["amphorae"]]
            begin(state, lb, "PENDING_UPDATE")

    def failover_amphora(self, amphora_id: str) -> None:
        with self._call("failover_amphora", amphora_id=amphora_id) as state:
            for lb in state.find("lbs", "lb.amphora", amphora_id):
                if any(a["id"] == amphora_id for a in lb["amphorae"]):
                    check_mutable(lb)
                    lb["_failover"] = [amphora_id]
                    begin(state, lb, "PENDING_UPDATE")
                    return
            raise NotFound(f"amphora {amphora_id} not found", status_code=404)

    # --- floating IPs ---------------------------------------------------------------------------------

    def list_floating_ips(self, *, port_id: str | None = None, tag: str | None = None) -> list[FloatingIP]:
        with self._call("list_floating_ips") as state:
            if port_id is not None:
                found = state.find("fips", "fip.port", port_id)
            elif tag is not None:
                found = state.find("fips", "fip.tag", tag)
            else:
                found = state["fips"].values()
            return [
                from_json(FloatingIP, f)
                for f in found
                if (port_id is None or f["port_id"] == port_id) and (tag is None or tag in f["tags"])
            ]

    def get_floating_ip(self, fip_id: str) -> FloatingIP:
        with self._call("get_floating_ip") as state:
            return from_json(FloatingIP, get_fip(state, fip_id))

    def move_floating_ip(
        self, fip_id: str, *, port_id: str, fixed_ip_address: str | None, if_revision: int
    ) -> FloatingIP:
        with self._call("move_floating_ip", fip_id=fip_id, port_id=port_id, if_revision=if_revision) as state:
            fip = get_fip(state, fip_id)
            if fip["revision_number"] != if_revision:
                raise PreconditionFailed(
                    f"floating IP {fip['floating_ip_address']} is at revision {fip['revision_number']}, "
                    f"not {if_revision}",
                    status_code=412,
                    request_id=request_id(state),
                )
            port = state["ports"].get(port_id)
            if port is None:
                raise NotFound(f"port {port_id} not found", status_code=404)
            move(state, fip, port_id, fixed_ip_address or port["ip"])
            return from_json(FloatingIP, fip)

    def create_floating_ip(self, *, floating_network_id: str, port_id: str, tags: Sequence[str]) -> FloatingIP:
        with self._call("create_floating_ip", port_id=port_id, tags=list(tags)) as state:
            port = state["ports"].get(port_id)
            if port is None:
                raise NotFound(f"port {port_id} not found", status_code=404)
            fip = new_fip(state, port_id, port["ip"], list(tags), port["project_id"])
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
        """Modeled from the state (probe.py): no packet is sent, and no API call is counted (the injected
        API faults do not apply to traffic)."""
        with self._state(write=False) as state:
            return model_probe(state, address, port, protocol, timeout=timeout)

    # --- pre-flight -----------------------------------------------------------------------------------

    def get_quota(self, project_id: str) -> QuotaUsage:
        with self._call("get_quota") as state:
            return QuotaUsage(limits=limits(state, project_id), in_use=usage(state, project_id))

    def subnet_free_addresses(self, subnet_id: str) -> int | None:
        with self._call("subnet_free_addresses") as state:
            subnet = state["subnets"].get(subnet_id)
            if subnet is None:
                raise NotFound(f"subnet {subnet_id} not found", status_code=404)
            free: int = subnet["capacity"] - subnet_used(state, subnet_id)
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
            return [from_json(Image, i) for i in images(state, tag)]

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
            raise CloudError(f"Validation failure: unknown image fault {fault}", status_code=400)
        extra = {"fault": fault, "fault_after": fault_after} if fault else {}
        with self._state(write=True) as state:
            return from_json(Image, publish(state, name, list(tags), **extra))

    def mutate(self, fn: Callable[[dict[str, Any]], Any]) -> Any:
        """Change the state directly (tests and fault setup): ``fn(whole)`` on the whole cloud as one document,
        under the lock, then persist (the cost grows with the cloud)."""
        with self._state(write=True) as state:
            whole = state.to_dict()
            result = fn(whole)
            state.replace(whole)
            return result

    def change(self, fn: Callable[[Session], Any]) -> Any:
        """Change the state directly through the simulator's own functions (tests): ``fn(session)`` in one
        transaction, reading and writing only the records it touches (neutron.new_port, release_ports...)."""
        with self._state(write=True) as state:
            return fn(state)

    def snapshot_state(self) -> dict[str, Any]:
        """The whole cloud as one document (tests; the cost grows with the cloud)."""
        with self._state(write=False) as state:
            return state.to_dict()

    def move_floating_ip_behind_our_back(self, fip_id: str, port_id: str | None) -> None:
        """Someone else moves a floating IP (a concurrent operator): lbswap must notice, never overwrite."""

        with self._state(write=True) as state:
            fip = get_fip(state, fip_id)
            move(state, fip, port_id, state["ports"][port_id]["ip"] if port_id else None)
