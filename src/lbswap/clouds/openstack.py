"""The ``openstack`` backend: the Cloud protocol over openstacksdk's load_balancer, network and image proxies.

Configured the OpenStack way (clouds.yaml and ``--os-cloud``, ``OS_CLOUD``, or the ``OS_*`` variables).
Octavia and Neutron are called through the SDK's proxies (keystoneauth sessions: auth, endpoints, request
ids); the load balancer graph is read as Octavia's own JSON so that it maps one to one onto :mod:`lbswap.model`.
Every foreign exception is translated once, in :func:`_translate`, keeping the status code and request id.

What the backend does beyond plain calls, and why:

- ``delete_load_balancer`` and a ``get_load_balancer`` that finds the load balancer gone delete the VIP port
  ``octavia-lb-<id>`` when it is still there (Octavia with the noop network driver leaves it behind; a real
  deployment deletes it itself, so the sweep finds nothing). Only that load balancer's port is touched.
- ``list_images`` returns ``[]`` when the cloud has no image API (the noop test stack has none).
- ``can_read_secret`` returns True when the cloud has no key manager (no Barbican: there is nothing that
  could refuse the clone's TLS references).
- ``subnet_free_addresses`` returns None when Neutron's network-ip-availability API is not reachable.

How a graph is read, and why it is not one call per object:

- Children by their parent, with Octavia's list filters: listeners and pools by load balancer, members per
  pool, L7 policies per listener, rules per policy; health monitors by id (Octavia filters by one value
  only, so a health monitor list by pool costs the same one call per pool).
- Reused when provably unchanged. Octavia changes a listener, pool, member, health monitor, L7 policy or
  rule only while the load balancer is locked: the API sets it ``PENDING_UPDATE`` and the worker or driver
  sets it ``ACTIVE`` at the end, and both writes move its ``updated_at``. So the children read while the
  load balancer was ``ACTIVE`` are still true when it is ``ACTIVE`` again with the same ``updated_at``,
  provided that write was at least :attr:`OpenStackCloud.graph_settle` seconds older than the read
  (``updated_at`` has whole seconds, and the API and worker hosts' clocks may differ a little). A reused
  graph still gets its member health from the status tree, and its amphorae, floating IPs and every load
  balancer field from fresh calls: four calls instead of one per object. Anything unexpected (a member
  the status tree does not show, a listener or pool id that changed) means a full read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import email.utils
import json
import logging
import os
import re
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

from lbswap.clouds import reach
from lbswap.clouds.base import ProbeResult, SystemClock
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
    AdditionalVip,
    Amphora,
    Flavor,
    FloatingIP,
    HealthMonitor,
    Image,
    L7Policy,
    L7Rule,
    LBSummary,
    Listener,
    LoadBalancer,
    Member,
    Pool,
    Provider,
    QuotaUsage,
    StackResource,
    Stats,
    from_json,
)

LOG = logging.getLogger(__name__)
T = TypeVar("T")

LB = "/lbaas"  # relative to the versioned endpoint the SDK discovered
VIP_PORT_PREFIX = "octavia-lb-"
#: seconds before one HTTP request counts as a timeout, unless clouds.yaml sets api_timeout
DEFAULT_API_TIMEOUT = 60.0
# What providers other than amphora support (Octavia's API does not list protocols per provider).
PROVIDER_LIMITS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ovn": (("TCP", "UDP", "SCTP"), ("SOURCE_IP_PORT",)),
}
#: seconds a load balancer's last change must precede a read of its children for them to be reused
GRAPH_SETTLE = 5.0
#: load balancers whose children are kept for reuse (least recently read dropped first)
GRAPH_CACHE_SIZE = 512
# Octavia quota names -> lbswap's kinds; Neutron's are the same words (port, floatingip).
#: lbswap's quota kind -> the names Octavia's quota API answers with, newest first (it answers ``loadbalancer``,
#: ``healthmonitor``...; ``load_balancer`` and ``health_monitor`` are its deprecated aliases)
OCTAVIA_QUOTAS = {
    "load_balancer": ("loadbalancer", "load_balancer"),
    "listener": ("listener",),
    "pool": ("pool",),
    "member": ("member",),
    "health_monitor": ("healthmonitor", "health_monitor"),
    "l7policy": ("l7policy",),
}


def _translate(exc: Exception, what: str) -> CloudError | ConfigError:
    """One foreign exception -> lbswap's error tree (status code and request id kept)."""
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions as sdk

    if isinstance(exc, ksa.AuthPluginException | ksa.MissingAuthPlugin | sdk.ConfigException):
        return ConfigError(f"cannot authenticate to the cloud: {_first_line(exc)}")
    if isinstance(exc, ksa.ConnectTimeout | ksa.RequestTimeout | sdk.ResourceTimeout):
        return CloudTimeout(f"{what}: no answer in time ({type(exc).__name__})")
    status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    request_id = getattr(exc, "request_id", None)
    text = _first_line(getattr(exc, "details", None) or exc)
    message = f"{what}: {text}"
    kind: type[CloudError] = CloudError
    if status == 404:
        kind = NotFound
    elif status == 412:
        kind = PreconditionFailed
    elif status in (403, 409) and "quota" in text.lower():
        kind = QuotaExceeded
    elif status == 409:
        kind = Conflict
    return kind(message, status_code=status, request_id=request_id)


def _first_line(value: object) -> str:
    text = str(value).strip()
    return (text.splitlines() or [type(value).__name__])[0][:300]


@contextlib.contextmanager
def _api(what: str) -> Iterator[None]:
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions as sdk

    try:
        yield
    except (sdk.SDKException, ksa.ClientException) as exc:
        raise _translate(exc, what) from exc


def _fields(cls: type[T], data: Mapping[str, Any], **extra: Any) -> T:
    """A model dataclass from Octavia/Neutron JSON: known keys only; null where the model wants a value
    means the model's default (Octavia returns null for an empty description on some objects)."""
    kept: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if f.name in data and not (data[f.name] is None and f.default is not None and has_default):
            kept[f.name] = data[f.name]  # a null without a model default (port_id of a free floating IP) stays
    nested = {  # already model objects; sequences as tuples, as the model declares them
        k: tuple(v) if isinstance(v, list) else v
        for k, v in extra.items()
        if isinstance(v, list | tuple) or dataclasses.is_dataclass(v)
    }
    kept.update({k: v for k, v in extra.items() if k not in nested})
    for name in nested:
        kept.pop(name, None)
    return dataclasses.replace(from_json(cls, kept), **nested)  # type: ignore[type-var]


def _utc_iso(value: Any) -> str | None:
    """An Octavia timestamp (ISO 8601, UTC without an offset) as ISO 8601 with its offset; None if absent."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        LOG.debug("not a timestamp: %r", value)
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.isoformat()


def _epoch(value: Any) -> float | None:
    iso = _utc_iso(value)
    return datetime.datetime.fromisoformat(iso).timestamp() if iso else None


def _served_at(headers: Mapping[str, str]) -> float | None:
    """The server's clock (the HTTP Date header, whole seconds) when it answered, or None."""
    try:
        return email.utils.parsedate_to_datetime(headers["Date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def _changed(lb: Mapping[str, Any]) -> str | None:
    """A load balancer's last write as Octavia recorded it."""
    value = lb.get("updated_at") or lb.get("created_at")
    return value if isinstance(value, str) else None


@dataclasses.dataclass(frozen=True)
class _Children:
    """A load balancer's listeners and pools, read while it was ACTIVE and last written at ``changed``."""

    changed: str
    listeners: tuple[Listener, ...]
    pools: tuple[Pool, ...]


def _topology_of(flavor_data: str | None) -> tuple[str | None, str | None]:
    try:
        data = json.loads(flavor_data or "{}")
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    return data.get("loadbalancer_topology"), data.get("amp_image_tag")


def _check_config_files() -> None:
    """Refuse a malformed clouds.yaml or secure.yaml in one line (the SDK would skip it with a warning and
    then not find the cloud). The parser's text is not shown: it may quote a line holding a password."""
    import os

    import yaml
    from openstack.config import loader

    paths = [os.environ.get("OS_CLIENT_CONFIG_FILE"), os.environ.get("OS_CLIENT_SECURE_FILE")]
    for path in [p for p in paths if p] + list(loader.CONFIG_FILES) + list(loader.SECURE_FILES):
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as stream:
                data = yaml.safe_load(stream)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {type(exc).__name__}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" near line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path} is not valid YAML{where}") from None
        if data is not None and not (isinstance(data, dict) and isinstance(data.get("clouds", {}), dict)):
            raise ConfigError(f"{path} is malformed: it must be a mapping with a `clouds:` mapping")


class OpenStackCloud:
    """Octavia and Neutron through openstacksdk. ``cloud_name`` is a clouds.yaml entry, or None for
    ``OS_CLOUD`` / the ``OS_*`` variables."""

    kind = "openstack"

    def __init__(self, cloud_name: str | None) -> None:
        import openstack
        import openstack.config
        import openstack.connection

        self._name = cloud_name
        self._clock = SystemClock()
        _check_config_files()
        try:
            region = openstack.config.get_cloud_region(cloud=cloud_name)
            if region.config.get("api_timeout") is None:  # a hung request must not hang lbswap at 3 a.m.
                region.config["api_timeout"] = DEFAULT_API_TIMEOUT
            self._conn = openstack.connection.Connection(config=region)
            self._name = cloud_name or self._conn.config.name or None
        except Exception as exc:  # the SDK raises many kinds here; none of their texts carries a secret
            name = f"cloud {cloud_name!r}" if cloud_name else "the OS_* environment"
            raise ConfigError(f"cannot use {name}: {_first_line(exc)}") from None
        self._profiles: dict[str, tuple[str | None, str | None]] = {}
        self._services: dict[str, bool] = {}
        self._children: OrderedDict[str, _Children] = OrderedDict()
        self._children_lock = threading.Lock()  # a campaign's swaps read graphs from several threads
        #: see the module doc; tests shorten it rather than wait
        self.graph_settle = GRAPH_SETTLE

    @property
    def clock(self) -> SystemClock:
        return self._clock

    def spec(self) -> str:
        return f"openstack:{self._name}" if self._name and self._name != "envvars" else "openstack"

    def identity(self) -> str:
        """Which cloud this is, stable across processes and hosts: the auth URL (or, without one, the Octavia
        endpoint), the project (id, else name and domain) and the region. Never a credential."""
        config = self._conn.config
        auth: Mapping[str, Any] = config.config.get("auth") or {}
        url = auth.get("auth_url") or config.config.get("load_balancer_endpoint_override") or ""
        project = str(auth.get("project_id") or auth.get("tenant_id") or "")
        name = str(auth.get("project_name") or auth.get("tenant_name") or "")
        if not project and name:  # a name is unique within its domain only
            domain = auth.get("project_domain_id") or auth.get("project_domain_name")
            project = f"{name}@{domain}" if domain else name
        region = config.region_name or ""
        # the SDK rewrites an endpoint override to its versioned form once it has discovered the API (…/v2):
        # the identity must not depend on whether this process has made a call yet
        base = re.sub(r"/v\d+(\.\d+)?$", "", _public_url(str(url)))
        return f"openstack:{base};project={project};region={region}"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    # --- raw JSON through the SDK's proxies -------------------------------------------------------------

    def _call(self, service: str, method: str, url: str, what: str, **kwargs: Any) -> Any:
        return self._dated_call(service, method, url, what, **kwargs)[0]

    def _dated_call(self, service: str, method: str, url: str, what: str, **kwargs: Any) -> tuple[Any, float | None]:
        """The JSON of one call and the server's clock when it answered (see :func:`_served_at`)."""
        from openstack import exceptions as sdk

        with _api(what):  # also the proxy: building it discovers the endpoint, which can fail
            response = getattr(self._conn, service).request(url, method, raise_exc=False, **kwargs)
            sdk.raise_from_response(response)
            return (response.json() if response.content else None), _served_at(response.headers)

    def _octavia(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        return self._call("load_balancer", method, path, what, **kwargs)

    def _neutron(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        return self._call("network", method, path, what, **kwargs)

    def _list(self, path: str, key: str, what: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of an Octavia collection, following its pagination links."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        query: dict[str, Any] | None = params
        while url:
            page = self._octavia("GET", url, what, params=query)
            items += page.get(key, [])
            url = next((link["href"] for link in page.get(f"{key}_links", []) if link.get("rel") == "next"), None)
            query = None
        return items

    # --- reading ----------------------------------------------------------------------------------------

    def list_load_balancers(self, *, project_id: str | None = None) -> list[LBSummary]:
        params = {"project_id": project_id} if project_id else {}
        return [self._summary(lb) for lb in self._list(f"{LB}/loadbalancers", "loadbalancers", "list", **params)]

    def get_load_balancer(self, lb_id: str) -> LBSummary:
        try:
            data = self._octavia("GET", f"{LB}/loadbalancers/{lb_id}", f"load balancer {lb_id}")["loadbalancer"]
        except NotFound:
            self._delete_leftover_vip_ports(lb_id)
            raise
        return self._summary(data)

    @staticmethod
    def _summary(data: Mapping[str, Any]) -> LBSummary:
        return _fields(LBSummary, data)

    def read_graph(self, lb_id: str) -> LoadBalancer:
        what = f"load balancer {lb_id}"
        try:
            data, served_at = self._dated_call("load_balancer", "GET", f"{LB}/loadbalancers/{lb_id}", what)
        except NotFound:
            self._forget(lb_id)
            raise
        lb = data["loadbalancer"]
        children = self._reusable_children(lb, what)
        if children is None:
            children = self._read_children(lb, what)
            self._remember(lb, served_at, children)
        vips = [
            AdditionalVip(subnet_id=v["subnet_id"], ip_address=v.get("ip_address"))
            for v in lb.get("additional_vips") or []
        ]
        amphorae = self.list_amphorae(lb_id) if lb.get("provider") in ("amphora", "octavia") else []
        topology = self._topology(lb.get("flavor_id"), amphorae)
        fips = self.list_floating_ips(port_id=lb["vip_port_id"]) if lb.get("vip_port_id") else []
        return _fields(
            LoadBalancer,
            lb,
            additional_vips=vips,
            topology=topology,
            listeners=list(children.listeners),
            pools=list(children.pools),
            floating_ips=fips,
            amphorae=amphorae,
        )

    def _read_children(self, lb: Mapping[str, Any], what: str) -> _Children:
        """Every listener and pool of a load balancer, and everything under them, listed by parent."""
        lb_id = lb["id"]
        pools = self._by_parent("pools", "pool", [p["id"] for p in lb.get("pools", [])], what, loadbalancer_id=lb_id)
        listeners = self._by_parent(
            "listeners", "listener", [li["id"] for li in lb.get("listeners", [])], what, loadbalancer_id=lb_id
        )
        return _Children(
            changed=_changed(lb) or "",
            listeners=tuple(self._listener(li, what) for li in listeners),
            pools=tuple(self._pool(p, what) for p in pools),
        )

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
            monitor = _fields(HealthMonitor, hm)
        return _fields(Pool, data, members=[_fields(Member, m) for m in members], healthmonitor=monitor)

    def _listener(self, data: Mapping[str, Any], what: str) -> Listener:
        refs = [ref["id"] for ref in data.get("l7policies") or []]
        policies = []
        for policy in self._by_parent("l7policies", "l7policy", refs, what, listener_id=data["id"]):
            path = f"{LB}/l7policies/{policy['id']}/rules"
            rules = self._list(path, "rules", what) if policy.get("rules") else []
            policies.append(_fields(L7Policy, policy, rules=[_fields(L7Rule, r) for r in rules]))
        return _fields(Listener, data, l7policies=policies)

    def _remember(self, lb: Mapping[str, Any], served_at: float | None, children: _Children) -> None:
        """Keep children for reuse when they were read after the load balancer's last write had settled."""
        lb_id = lb["id"]
        changed = _epoch(_changed(lb))
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
        if lb.get("provisioning_status") != "ACTIVE" or _changed(lb) != kept.changed or not same_ids:
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

    def _flavor_profile(self, flavor_id: str) -> tuple[str | None, str | None]:
        """(topology, amp_image_tag) of a flavor's profile; profiles are admin-only, so (None, None) without."""
        if flavor_id not in self._profiles:
            flavor = self._octavia("GET", f"{LB}/flavors/{flavor_id}", f"flavor {flavor_id}")["flavor"]
            try:
                path = f"{LB}/flavorprofiles/{flavor['flavor_profile_id']}"
                profile = self._octavia("GET", path, f"flavor profile of {flavor_id}")["flavorprofile"]
                self._profiles[flavor_id] = _topology_of(profile.get("flavor_data"))
            except CloudError as exc:
                if exc.status_code not in (403, 404):
                    raise
                self._profiles[flavor_id] = (None, None)
        return self._profiles[flavor_id]

    def get_stats(self, lb_id: str) -> Stats:
        stats = self._octavia("GET", f"{LB}/loadbalancers/{lb_id}/stats", f"stats of {lb_id}")["stats"]
        return _fields(Stats, stats)

    def list_amphorae(self, lb_id: str) -> list[Amphora]:
        try:
            amps = self._list("/octavia/amphorae", "amphorae", f"amphorae of {lb_id}", loadbalancer_id=lb_id)
        except CloudError as exc:
            if exc.status_code == 403:  # the amphora API is admin-only: an operator tool, so say so once
                LOG.warning("amphorae of %s not readable (admin only): %s", lb_id, exc)
                return []
            raise
        return [
            _fields(
                Amphora,
                a,
                role=a.get("role") or "STANDALONE",
                image_id=a.get("image_id") or "",
                created_at=_utc_iso(a.get("created_at")),
                cert_expiration=_utc_iso(a.get("cert_expiration")),
            )
            for a in amps
            if a.get("status") != "DELETED"
        ]

    # --- load balancer lifecycle ----------------------------------------------------------------------

    def create_load_balancer(self, body: Mapping[str, Any]) -> LBSummary:
        name = body.get("name", "")
        data = self._octavia(
            "POST", f"{LB}/loadbalancers", f"create load balancer {name!r}", json={"loadbalancer": dict(body)}
        )
        return self._summary(data["loadbalancer"])

    def delete_load_balancer(self, lb_id: str, *, cascade: bool = True) -> None:
        params = {"cascade": "true"} if cascade else {}
        self._forget(lb_id)
        try:
            self._octavia("DELETE", f"{LB}/loadbalancers/{lb_id}", f"delete load balancer {lb_id}", params=params)
        except NotFound:
            self._delete_leftover_vip_ports(lb_id)
        except Conflict:
            try:
                current = self.get_load_balancer(lb_id)
            except NotFound:
                return
            if current.provisioning_status != "PENDING_DELETE":  # already being deleted: quietly done
                raise

    def _delete_leftover_vip_ports(self, lb_id: str) -> None:
        """Delete the VIP port of a load balancer that no longer exists (idempotent; see the module doc)."""
        name = VIP_PORT_PREFIX + lb_id
        try:
            ports = self._neutron("GET", "/ports", f"VIP port of {lb_id}", params={"name": name})["ports"]
            for port in ports:
                if port.get("name") != name or port.get("device_id") not in ("", lb_id, f"lb-{lb_id}"):
                    continue
                with contextlib.suppress(NotFound):
                    self._neutron("DELETE", f"/ports/{port['id']}", f"delete VIP port {port['id']} of {lb_id}")
                    LOG.info("deleted VIP port %s left behind by load balancer %s", port["id"], lb_id)
        except CloudError as exc:  # best effort: the next look at the deleted load balancer tries again
            LOG.warning("could not clean up the VIP port %s of deleted load balancer %s: %s", name, lb_id, exc)

    def rename_load_balancer(self, lb_id: str, name: str) -> None:
        body = {"loadbalancer": {"name": name}}
        self._octavia("PUT", f"{LB}/loadbalancers/{lb_id}", f"rename load balancer {lb_id}", json=body)

    def failover_load_balancer(self, lb_id: str) -> None:
        self._octavia("PUT", f"{LB}/loadbalancers/{lb_id}/failover", f"failover of load balancer {lb_id}")

    def failover_amphora(self, amphora_id: str) -> None:
        self._octavia("PUT", f"/octavia/amphorae/{amphora_id}/failover", f"failover of amphora {amphora_id}")

    # --- floating IPs ---------------------------------------------------------------------------------

    @staticmethod
    def _fip(data: Mapping[str, Any]) -> FloatingIP:
        return _fields(FloatingIP, data)

    def list_floating_ips(self, *, port_id: str | None = None, tag: str | None = None) -> list[FloatingIP]:
        params = {k: v for k, v in (("port_id", port_id), ("tags", tag)) if v}
        return [
            self._fip(f) for f in self._neutron("GET", "/floatingips", "floating IPs", params=params)["floatingips"]
        ]

    def get_floating_ip(self, fip_id: str) -> FloatingIP:
        return self._fip(self._neutron("GET", f"/floatingips/{fip_id}", f"floating IP {fip_id}")["floatingip"])

    def move_floating_ip(
        self, fip_id: str, *, port_id: str, fixed_ip_address: str | None, if_revision: int
    ) -> FloatingIP:
        attrs: dict[str, Any] = {"port_id": port_id}
        if fixed_ip_address:
            attrs["fixed_ip_address"] = fixed_ip_address
        with _api(f"move floating IP {fip_id} to port {port_id}"):
            fip = self._conn.network.update_ip(fip_id, if_revision=if_revision, **attrs)
            return self._fip(fip.to_dict(computed=False))

    def create_floating_ip(self, *, floating_network_id: str, port_id: str, tags: Sequence[str]) -> FloatingIP:
        # in the project of the port (the load balancer's, whose quota the plan checked), not the caller's
        port = self._neutron("GET", f"/ports/{port_id}", f"port {port_id}")["port"]
        body = {"floatingip": {"floating_network_id": floating_network_id, "port_id": port_id}}
        if port.get("project_id"):
            body["floatingip"]["project_id"] = port["project_id"]
        fip = self._neutron("POST", "/floatingips", "create floating IP", json=body)["floatingip"]
        if tags:
            self._neutron("PUT", f"/floatingips/{fip['id']}/tags", "tag floating IP", json={"tags": list(tags)})
            fip = self._neutron("GET", f"/floatingips/{fip['id']}", "floating IP")["floatingip"]
        return self._fip(fip)

    def delete_floating_ip(self, fip_id: str) -> None:
        with contextlib.suppress(NotFound):
            self._neutron("DELETE", f"/floatingips/{fip_id}", f"delete floating IP {fip_id}")

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
        """Plain sockets from this host to the floating IP (where an operator's clients would come from).

        Test hook: with LBSWAP_TEST_PROBE_STANDIN=FILE no packet is sent (tier 2's floating IPs lead nowhere):
        the probe is appended to FILE as a JSON line and answered as a healthy listener would (HTTP: 200)."""
        standin = os.environ.get("LBSWAP_TEST_PROBE_STANDIN")
        if standin:
            with open(standin, "a", encoding="utf-8") as log:
                log.write(json.dumps({"address": address, "port": port, "protocol": protocol}) + "\n")
            return ProbeResult(ok=True, status=200 if protocol in reach.HTTP_PROTOCOLS else None)
        return reach.probe(address, port, protocol, path=path, host=host, sni=sni, payload=payload, timeout=timeout)

    # --- pre-flight -----------------------------------------------------------------------------------

    def get_quota(self, project_id: str) -> QuotaUsage:
        quota = self._octavia("GET", f"{LB}/quotas/{project_id}", "quota")["quota"]
        limits = {
            kind: _limit(next((quota[n] for n in names if quota.get(n) is not None), None))
            for kind, names in OCTAVIA_QUOTAS.items()
        }
        in_use = self._octavia_usage(project_id, [k for k, v in limits.items() if v >= 0])
        with contextlib.suppress(CloudError):  # Neutron's quota details extension may be absent
            details = self._neutron("GET", f"/quotas/{project_id}/details.json", "network quota")["quota"]
            for kind in ("port", "floatingip"):
                limits[kind] = _limit(details[kind]["limit"])
                in_use[kind] = int(details[kind]["used"])
        return QuotaUsage(limits=limits, in_use=in_use)

    def _octavia_usage(self, project_id: str, kinds: Sequence[str]) -> dict[str, int]:
        """Octavia has no usage API: count what the project has, only for kinds that have a limit."""
        what, usage = "quota usage", {}
        if "load_balancer" in kinds:
            usage["load_balancer"] = len(
                self._list(f"{LB}/loadbalancers", "loadbalancers", what, project_id=project_id)
            )
        if "listener" in kinds:
            usage["listener"] = len(self._list(f"{LB}/listeners", "listeners", what, project_id=project_id))
        if {"pool", "member"} & set(kinds):
            pools = self._list(f"{LB}/pools", "pools", what, project_id=project_id)
            usage["pool"], usage["member"] = len(pools), sum(len(p.get("members", [])) for p in pools)
        if "health_monitor" in kinds:
            usage["health_monitor"] = len(
                self._list(f"{LB}/healthmonitors", "healthmonitors", what, project_id=project_id)
            )
        if "l7policy" in kinds:
            usage["l7policy"] = len(self._list(f"{LB}/l7policies", "l7policies", what, project_id=project_id))
        return usage

    def subnet_free_addresses(self, subnet_id: str) -> int | None:
        subnet = self._neutron("GET", f"/subnets/{subnet_id}", f"subnet {subnet_id}")["subnet"]
        try:
            path = f"/network-ip-availabilities/{subnet['network_id']}"
            data = self._neutron("GET", path, f"IP availability of {subnet_id}")["network_ip_availability"]
        except CloudError as exc:
            LOG.debug("no IP availability for subnet %s: %s", subnet_id, exc)
            return None
        for entry in data.get("subnet_ip_availability", []):
            if entry.get("subnet_id") == subnet_id:
                return int(entry["total_ips"]) - int(entry["used_ips"])
        return None

    def _has_service(self, service_type: str) -> bool:
        if service_type not in self._services:
            quiet = logging.getLogger("openstack.config")  # it warns about every service the catalog lacks
            level = quiet.level
            quiet.setLevel(logging.ERROR)
            try:
                self._services[service_type] = bool(self._conn.has_service(service_type))
            except Exception:  # no catalog (auth_type none) and no endpoint override: the service is absent
                self._services[service_type] = False
            finally:
                quiet.setLevel(level)
        return self._services[service_type]

    def can_read_secret(self, ref: str) -> bool:
        if not self._has_service("key-manager"):
            return True  # no Barbican: nothing can refuse the reference
        try:
            self._call("key_manager", "GET", ref, f"secret {ref}")
        except CloudError as exc:
            if exc.status_code in (401, 403, 404):
                return False
            raise
        return True

    def get_flavor(self, name_or_id: str) -> Flavor:
        flavors = self._list(f"{LB}/flavors", "flavors", f"flavor {name_or_id}")
        found = next((f for f in flavors if name_or_id in (f["id"], f["name"])), None)
        if found is None:
            raise NotFound(f"flavor {name_or_id} not found", status_code=404)
        topology, tag = self._flavor_profile(found["id"])
        provider = found.get("provider_name") or "amphora"
        return _fields(
            Flavor, found, provider=provider, topology=topology, amp_image_tag=tag, enabled=found.get("enabled", True)
        )

    def get_provider(self, name: str) -> Provider:
        providers = self._list(f"{LB}/providers", "providers", f"provider {name}")
        if not any(p.get("name") == name for p in providers):
            raise NotFound(f"provider {name} not found", status_code=404)
        if name in PROVIDER_LIMITS:
            protocols, algorithms = PROVIDER_LIMITS[name]
            return Provider(name=name, listener_protocols=protocols, lb_algorithms=algorithms)
        return Provider(name=name)

    def list_stack_resources(self) -> list[StackResource]:
        if not self._has_service("orchestration"):
            return []  # no Heat in this cloud (the tier 2 stack has none): no stack can hold a load balancer
        found = []
        with _api("orchestration stacks"):
            for stack in self._conn.orchestration.stacks():
                owner = "magnum" if any("magnum" in str(t).lower() for t in (stack.tags or ())) else "heat"
                for res in self._conn.orchestration.resources(stack, resource_type="OS::Octavia::LoadBalancer"):
                    found.append(StackResource(stack.id, stack.name, res.name, res.physical_resource_id or "", owner))
        return found

    def service_compute_quota(self) -> QuotaUsage | None:
        return None  # Octavia's service project is not readable to an ordinary caller: capacity unknown

    def list_images(self, tag: str) -> list[Image]:
        if not self._has_service("image"):
            return []  # no image API (the noop test stack): staleness is "unknown"
        with _api(f"images tagged {tag}"):
            images = [
                Image(id=i.id, name=i.name or "", tags=tuple(i.tags or ()), created_at=i.created_at or "")
                for i in self._conn.image.images(tag=tag)
            ]
        return sorted(images, key=lambda i: i.created_at, reverse=True)


def _public_url(url: str) -> str:
    """A URL without what may carry a secret (user info, query, fragment), without a trailing slash."""
    parts = urllib.parse.urlsplit(url.strip())
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port else "")
    return urllib.parse.urlunsplit((parts.scheme.lower(), netloc.lower(), parts.path.rstrip("/"), "", ""))


def _limit(value: Any) -> int:
    return -1 if value is None else int(value)
