"""``OpenStackCloud``: the Cloud protocol over openstacksdk, made of the package's parts (rest, graph, preflight)
plus the load balancer lifecycle and the floating IP side effects."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from lbswap.clouds import peer_probe, reach
from lbswap.clouds.base import ProbeResult, SystemClock
from lbswap.clouds.openstack.api import (
    AMPHORAE_REUSE,
    DEFAULT_API_TIMEOUT,
    GRAPH_SETTLE,
    LB,
    VIP_PORT_PREFIX,
    api_errors,
    check_config_files,
    first_line,
    public_url,
    to_model,
)
from lbswap.clouds.openstack.graph import GraphReader, _Children
from lbswap.clouds.openstack.preflight import Preflight
from lbswap.errors import CloudError, ConfigError, Conflict, NotFound
from lbswap.model import FloatingIP, LBSummary, Stats

LOG = logging.getLogger(__name__)


PROBE_NETNS = "probe-netns"


def parse_spec(arg: str | None) -> tuple[str | None, str | None]:
    """The part of ``openstack:CLOUD[?probe-netns=NS]`` after the colon: ``(CLOUD or None, NS or None)``.

    :raises ConfigError: an option other than probe-netns, or a namespace name ``ip netns`` would not make.
    """
    name, _, query = (arg or "").partition("?")
    netns = None
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if key != PROBE_NETNS or not peer_probe.NETNS_NAME.fullmatch(value):
            raise ConfigError(f"backend option {item!r}: the openstack backend takes only {PROBE_NETNS}=NAMESPACE")
        netns = value
    return name or None, netns


class OpenStackCloud(GraphReader, Preflight):
    """Octavia and Neutron through openstacksdk. ``cloud_name`` is a clouds.yaml entry, or None for
    ``OS_CLOUD`` / the ``OS_*`` variables; ``CLOUD?probe-netns=NS`` probes listeners from inside the network
    namespace NS (see :meth:`probe_listener`)."""

    kind = "openstack"

    def __init__(self, cloud_name: str | None) -> None:
        import openstack
        import openstack.config
        import openstack.connection

        cloud_name, self._probe_netns = parse_spec(cloud_name)
        self._name = cloud_name
        self._clock = SystemClock()
        check_config_files()
        try:
            region = openstack.config.get_cloud_region(cloud=cloud_name)
            if region.config.get("api_timeout") is None:  # a hung request must not hang lbswap at 3 a.m.
                region.config["api_timeout"] = DEFAULT_API_TIMEOUT
            self._conn = openstack.connection.Connection(config=region)
            self._name = cloud_name or self._conn.config.name or None
        except Exception as exc:  # the SDK raises many kinds here; none of their texts carries a secret
            name = f"cloud {cloud_name!r}" if cloud_name else "the OS_* environment"
            raise ConfigError(f"cannot use {name}: {first_line(exc)}") from None
        self._profiles: dict[str, tuple[str | None, str | None]] = {}
        self._services: dict[str, bool] = {}
        self._children: OrderedDict[str, _Children] = OrderedDict()
        self._children_lock = threading.Lock()  # a campaign's swaps read graphs from several threads
        self._amphorae_forbidden = False
        self._subnet_networks: dict[str, str] = {}
        self._providers: set[str] = set()
        #: see the module doc; tests shorten it rather than wait
        self.graph_settle = GRAPH_SETTLE
        self.amphorae_reuse = AMPHORAE_REUSE

    @property
    def clock(self) -> SystemClock:
        return self._clock

    def spec(self) -> str:
        name = self._name if self._name and self._name != "envvars" else ""
        option = f"?{PROBE_NETNS}={self._probe_netns}" if self._probe_netns else ""
        return f"openstack:{name}{option}" if name or option else "openstack"

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
        base = re.sub(r"/v\d+(\.\d+)?$", "", public_url(str(url)))
        return f"openstack:{base};project={project};region={region}"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    # --- reading ----------------------------------------------------------------------------------------

    def list_load_balancers(
        self, *, project_id: str | None = None, tags: Sequence[str] = (), tags_any: Sequence[str] = ()
    ) -> list[LBSummary]:
        params: dict[str, str] = {"project_id": project_id} if project_id else {}
        if tags:  # Octavia: those carrying every tag of the comma-separated list
            params["tags"] = ",".join(tags)
        if tags_any:  # and at least one of these
            params["tags-any"] = ",".join(tags_any)
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
        return to_model(LBSummary, data)

    def get_stats(self, lb_id: str) -> Stats:
        stats = self._octavia("GET", f"{LB}/loadbalancers/{lb_id}/stats", f"stats of {lb_id}")["stats"]
        return to_model(Stats, stats)

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

    def get_floating_ip(self, fip_id: str) -> FloatingIP:
        return self._fip(self._neutron("GET", f"/floatingips/{fip_id}", f"floating IP {fip_id}")["floatingip"])

    def move_floating_ip(
        self, fip_id: str, *, port_id: str, fixed_ip_address: str | None, if_revision: int
    ) -> FloatingIP:
        attrs: dict[str, Any] = {"port_id": port_id}
        if fixed_ip_address:
            attrs["fixed_ip_address"] = fixed_ip_address
        with api_errors(f"move floating IP {fip_id} to port {port_id}"):
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
        """Plain sockets from this host to the floating IP (where an operator's clients would come from), or,
        with the backend option probe-netns, from inside that network namespace (:mod:`lbswap.clouds.peer_probe`);
        there, when a member echoes the address it saw (``member NAME peer ADDRESS``), ``served_by`` names the
        load balancer of the amphora with that address."""
        if not self._probe_netns:
            return reach.probe(address, port, protocol, path=path, host=host, sni=sni, payload=payload, timeout=timeout)
        args = [address, str(port), protocol, "--path", path, "--timeout", str(timeout)]
        args += ["--host", host] if host else []
        args += ["--sni", sni] if sni else []
        args += ["--payload-hex", payload.hex()] if payload else []
        try:
            data = peer_probe.in_netns(self._probe_netns, args, timeout + 15.0)
            result = to_model(ProbeResult, data)
        except (CloudError, ValueError, TypeError) as exc:
            return ProbeResult(
                ok=False, error=f"could not probe from namespace {self._probe_netns}: {exc}", reachable=False
            )
        peer, at = data.get("peer"), data.get("peer_at")
        served_by = self.lb_of_amphora_address(str(peer)) if peer else None
        if served_by is None:
            return result
        return dataclasses.replace(result, served_by=served_by, served_at=float(at) if at is not None else None)

    def lb_of_amphora_address(self, address: str) -> str | None:
        """The load balancer of the amphora with ``address`` on a member's side (its VRRP port's, or a member
        port's: Neutron's port with that address on the amphora's server), None when none has it or the amphora
        API is not readable. A live amphora before a deleted one that had the address earlier."""
        if self._amphorae_forbidden:
            return None
        try:  # the filters narrow the lists; the answers are checked too (an API that ignored one lists all)
            amps = self._list("/octavia/amphorae", "amphorae", f"amphora at {address}", vrrp_ip=address)
            amps = [a for a in amps if a.get("vrrp_ip") == address]
            if not amps:
                params = {"fixed_ips": f"ip_address={address}"}
                ports = self._neutron("GET", "/ports", f"port at {address}", params=params)["ports"]
                servers = {p["device_id"] for p in ports if p.get("device_id") and _has_ip(p, address)}
                amps = [
                    amp
                    for server in sorted(servers)
                    for amp in self._list("/octavia/amphorae", "amphorae", f"amphora {server}", compute_id=server)
                    if amp.get("compute_id") == server
                ]
        except CloudError as exc:
            if exc.status_code == 403:  # admin only, as in list_amphorae
                self._amphorae_forbidden = True
            LOG.debug("who has %s: %s", address, exc)
            return None
        amps.sort(key=lambda a: (a.get("status") != "DELETED", a.get("updated_at") or a.get("created_at") or ""))
        return str(amps[-1]["loadbalancer_id"]) if amps and amps[-1].get("loadbalancer_id") else None


def _has_ip(port: Mapping[str, Any], address: str) -> bool:
    return any(ip.get("ip_address") == address for ip in port.get("fixed_ips") or ())
