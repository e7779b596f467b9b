"""Reading a load balancer's graph: children listed by their parent, and reused while provably unchanged (see
the package's doc)."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from lbswap.clouds.openstack.api import (
    GRAPH_CACHE_SIZE,
    LB,
    epoch_of,
    last_change,
    to_model,
    utc_iso,
)
from lbswap.clouds.openstack.rest import Rest
from lbswap.errors import CloudError, NotFound
from lbswap.model import (
    AdditionalVip,
    Amphora,
    FloatingIP,
    HealthMonitor,
    L7Policy,
    L7Rule,
    Listener,
    LoadBalancer,
    Member,
    Pool,
)

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class _Children:
    """A load balancer's listeners, pools and amphorae, read while it was ACTIVE and last written at ``changed``;
    the amphorae read at ``amphorae_at`` (the server's clock)."""

    changed: str
    listeners: tuple[Listener, ...]
    pools: tuple[Pool, ...]
    amphorae: tuple[Amphora, ...] = ()
    amphorae_at: float | None = None


class GraphReader(Rest):
    """``read_graph`` and ``list_amphorae``."""

    graph_settle: float
    amphorae_reuse: float
    _children: OrderedDict[str, _Children]
    _children_lock: threading.Lock
    _amphorae_forbidden: bool

    def read_graph(self, lb_id: str) -> LoadBalancer:
        what = f"load balancer {lb_id}"
        try:
            data, served_at = self._dated_call("load_balancer", "GET", f"{LB}/loadbalancers/{lb_id}", what)
        except NotFound:
            self._forget(lb_id)
            raise
        lb = data["loadbalancer"]
        self._subnet_networks.update({s: lb["vip_network_id"] for s in _subnets(lb) if lb.get("vip_network_id")})
        children = self._reusable_children(lb, what)
        if children is None:
            children = self._read_children(lb, what, served_at)
            self._remember(lb, served_at, children)
        elif (
            served_at is None or children.amphorae_at is None or served_at - children.amphorae_at >= self.amphorae_reuse
        ):
            children = dataclasses.replace(children, amphorae=self._amphorae_of(lb), amphorae_at=served_at)
            self._remember(lb, served_at, children)
        vips = [
            AdditionalVip(subnet_id=v["subnet_id"], ip_address=v.get("ip_address"))
            for v in lb.get("additional_vips") or []
        ]
        amphorae = list(children.amphorae)
        topology = self._topology(lb.get("flavor_id"), amphorae)
        fips = self.list_floating_ips(port_id=lb["vip_port_id"]) if lb.get("vip_port_id") else []
        return to_model(
            LoadBalancer,
            lb,
            additional_vips=vips,
            topology=topology,
            listeners=list(children.listeners),
            pools=list(children.pools),
            floating_ips=fips,
            amphorae=amphorae,
        )

    def _read_children(self, lb: Mapping[str, Any], what: str, served_at: float | None) -> _Children:
        """Every listener and pool of a load balancer, and everything under them, listed by parent; its amphorae."""
        lb_id = lb["id"]
        pools = self._by_parent("pools", "pool", [p["id"] for p in lb.get("pools", [])], what, loadbalancer_id=lb_id)
        listeners = self._by_parent(
            "listeners", "listener", [li["id"] for li in lb.get("listeners", [])], what, loadbalancer_id=lb_id
        )
        return _Children(
            changed=last_change(lb) or "",
            listeners=tuple(self._listener(li, what) for li in listeners),
            pools=tuple(self._pool(p, what) for p in pools),
            amphorae=self._amphorae_of(lb),
            amphorae_at=served_at,
        )

    def _amphorae_of(self, lb: Mapping[str, Any]) -> tuple[Amphora, ...]:
        return tuple(self.list_amphorae(lb["id"])) if lb.get("provider") in ("amphora", "octavia") else ()

    def _by_parent(self, path: str, key: str, ids: Sequence[str], what: str, **parent: str) -> list[dict[str, Any]]:
        """The objects ``ids`` of one kind, listed by their parent (``parent`` is the list filter); any the list
        did not return (a cloud that ignores the filter, a page cut short) fetched by id. In list order."""
        if not ids:
            return []
        wanted = set(ids)
        found = [item for item in self._list(f"{LB}/{path}", path, what, **parent) if item["id"] in wanted]
        missing = wanted - {item["id"] for item in found}
        found += [self._octavia("GET", f"{LB}/{path}/{i}", what)[key] for i in sorted(missing)]
        return found

    def _pool(self, data: Mapping[str, Any], what: str) -> Pool:
        members = self._list(f"{LB}/pools/{data['id']}/members", "members", what) if data.get("members") else []
        monitor = None
        if data.get("healthmonitor_id"):  # by id: Octavia filters on one value only, so a list by pool is no cheaper
            hm = self._octavia("GET", f"{LB}/healthmonitors/{data['healthmonitor_id']}", what)["healthmonitor"]
            monitor = to_model(HealthMonitor, hm)
        return to_model(Pool, data, members=[to_model(Member, m) for m in members], healthmonitor=monitor)

    def _listener(self, data: Mapping[str, Any], what: str) -> Listener:
        refs = [ref["id"] for ref in data.get("l7policies") or []]
        policies = []
        for policy in self._by_parent("l7policies", "l7policy", refs, what, listener_id=data["id"]):
            path = f"{LB}/l7policies/{policy['id']}/rules"
            rules = self._list(path, "rules", what) if policy.get("rules") else []
            policies.append(to_model(L7Policy, policy, rules=[to_model(L7Rule, r) for r in rules]))
        return to_model(Listener, data, l7policies=policies)

    def _remember(self, lb: Mapping[str, Any], served_at: float | None, children: _Children) -> None:
        """Keep children for reuse when they were read after the load balancer's last write had settled."""
        lb_id = lb["id"]
        changed = epoch_of(last_change(lb))
        self._forget(lb_id)
        if lb.get("provisioning_status") != "ACTIVE" or changed is None or served_at is None:
            return
        if changed >= served_at - self.graph_settle:
            return
        with self._children_lock:
            self._children[lb_id] = children
            while len(self._children) > GRAPH_CACHE_SIZE:
                self._children.popitem(last=False)

    def _forget(self, lb_id: str) -> None:
        with self._children_lock:
            self._children.pop(lb_id, None)

    def _reusable_children(self, lb: Mapping[str, Any], what: str) -> _Children | None:
        """The children read earlier, with member health from the status tree, if nothing can have changed them
        since (see the module doc); else None."""
        with self._children_lock:
            kept = self._children.get(lb["id"])
            if kept is None:
                return None
            self._children.move_to_end(lb["id"])
        same_ids = {li["id"] for li in lb.get("listeners", [])} == {li.id for li in kept.listeners} and {
            p["id"] for p in lb.get("pools", [])
        } == {p.id for p in kept.pools}
        if lb.get("provisioning_status") != "ACTIVE" or last_change(lb) != kept.changed or not same_ids:
            self._forget(lb["id"])
            return None
        tree = self._octavia("GET", f"{LB}/loadbalancers/{lb['id']}/status", what)["statuses"]["loadbalancer"]
        health: dict[str, dict[str, str]] = {}  # pool id -> member id -> operating status
        for listener in tree.get("listeners") or []:
            for pool in listener.get("pools") or []:
                health[pool["id"]] = {m["id"]: m.get("operating_status", "") for m in pool.get("members") or []}
        pools = []
        for pool in kept.pools:
            now = health.get(pool.id, {} if not pool.members else None)
            if now is None or set(now) != {m.id for m in pool.members}:  # a pool no listener uses, or changed
                self._forget(lb["id"])
                return None
            members = tuple(
                dataclasses.replace(m, operating_status=now[m.id] or m.operating_status) for m in pool.members
            )
            pools.append(dataclasses.replace(pool, members=members))
        return dataclasses.replace(kept, pools=tuple(pools))

    def _topology(self, flavor_id: str | None, amphorae: Sequence[Amphora]) -> str:
        if flavor_id:
            topology, _tag = self._flavor_profile(flavor_id)
            if topology:
                return topology
        return "ACTIVE_STANDBY" if any(a.role in ("MASTER", "BACKUP") for a in amphorae) else "SINGLE"

    def list_amphorae(self, lb_id: str) -> list[Amphora]:
        if self._amphorae_forbidden:
            return []
        try:
            amps = self._list("/octavia/amphorae", "amphorae", f"amphorae of {lb_id}", loadbalancer_id=lb_id)
        except CloudError as exc:
            if exc.status_code == 403:  # the amphora API is admin-only: an operator tool, so say so once
                LOG.warning("amphorae not readable (admin only), not asked again: %s", exc)
                self._amphorae_forbidden = True
                return []
            raise
        return [
            to_model(
                Amphora,
                a,
                role=a.get("role") or "STANDALONE",
                image_id=a.get("image_id") or "",
                created_at=utc_iso(a.get("created_at")),
                cert_expiration=utc_iso(a.get("cert_expiration")),
            )
            for a in amps
            if a.get("status") != "DELETED"
        ]

    @staticmethod
    def _fip(data: Mapping[str, Any]) -> FloatingIP:
        return to_model(FloatingIP, data)

    def list_floating_ips(self, *, port_id: str | None = None, tag: str | None = None) -> list[FloatingIP]:
        params = {k: v for k, v in (("port_id", port_id), ("tags", tag)) if v}
        return [
            self._fip(f) for f in self._neutron("GET", "/floatingips", "floating IPs", params=params)["floatingips"]
        ]


def _subnets(lb: Mapping[str, Any]) -> list[str]:
    """The subnets of a load balancer's VIPs: all on its VIP network (Octavia puts additional VIPs on the VIP port)."""
    return [s for s in [lb.get("vip_subnet_id"), *(v.get("subnet_id") for v in lb.get("additional_vips") or [])] if s]
