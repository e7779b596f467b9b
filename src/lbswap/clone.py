"""Snapshot -> the body of one fully-populated create for the clone, and the comparison behind invariant I5.

Pure: no I/O. Pools are defined once, by name, and referenced by name, as Octavia's fully-populated create wants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lbswap.model import (
    MARKER_CAMPAIGN,
    MARKER_CLONE_OF,
    HealthMonitor,
    L7Policy,
    L7Rule,
    Listener,
    LoadBalancer,
    Member,
    Pool,
    to_json,
)

#: Tags cloud-provider-openstack puts on the load balancers it manages for Kubernetes Services.
KUBERNETES_TAG_PREFIXES = ("kube_service_", "kube_cluster_", "cluster:", "service:")
KUBERNETES_ANNOTATION = "loadbalancer.openstack.org/load-balancer-id"
GENERATED_POOL_PREFIX = "lbswap-pool-"
CLONE_NAME_SUFFIX = "-lbswap"


@dataclass(frozen=True)
class TargetChanges:
    """Declared differences the clone may have from its source (what only a clone can change)."""

    flavor_id: str | None = None
    availability_zone: str | None = None
    provider: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.flavor_id or self.availability_zone or self.provider)


def is_kubernetes_managed(lb: LoadBalancer) -> bool:
    """A load balancer cloud-provider-openstack made for a Kubernetes Service (by name or tag)."""
    return lb.name.startswith("kube_service_") or any(t.startswith(KUBERNETES_TAG_PREFIXES) for t in lb.tags)


def clone_name(source: LoadBalancer) -> str:
    """The clone's name: the source's, or a temporary one for Kubernetes-managed load balancers so that
    cloud-provider-openstack does not find two load balancers with its name (renamed after the retire)."""
    return source.name + CLONE_NAME_SUFFIX if is_kubernetes_managed(source) else source.name


def pool_names(source: LoadBalancer) -> dict[str, str]:
    """Pool id -> a unique name to reference it by in the create body (generated where it has none)."""
    names: dict[str, str] = {}
    seen: set[str] = set()
    for index, pool in enumerate(source.pools):
        name = pool.name
        if not name or name in seen:
            name = f"{GENERATED_POOL_PREFIX}{index}"
        seen.add(name)
        names[pool.id] = name
    return names


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _tags(tags: tuple[str, ...]) -> list[str]:
    return list(tags)


def _monitor_body(hm: HealthMonitor) -> dict[str, Any]:
    return _drop_none(
        {
            "name": hm.name,
            "type": hm.type,
            "delay": hm.delay,
            "timeout": hm.timeout,
            "max_retries": hm.max_retries,
            "max_retries_down": hm.max_retries_down,
            "http_method": hm.http_method,
            "url_path": hm.url_path,
            "http_version": hm.http_version,
            "domain_name": hm.domain_name,
            "expected_codes": hm.expected_codes,
            "admin_state_up": hm.admin_state_up,
            "tags": _tags(hm.tags),
        }
    )


def _member_body(m: Member) -> dict[str, Any]:
    return _drop_none(
        {
            "name": m.name,
            "address": m.address,
            "protocol_port": m.protocol_port,
            "weight": m.weight,
            "subnet_id": m.subnet_id,
            "backup": m.backup,
            "monitor_address": m.monitor_address,
            "monitor_port": m.monitor_port,
            "admin_state_up": m.admin_state_up,
            "tags": _tags(m.tags),
        }
    )


def _pool_body(pool: Pool, name: str) -> dict[str, Any]:
    body = _drop_none(
        {
            "name": name,
            "description": pool.description,
            "protocol": pool.protocol,
            "lb_algorithm": pool.lb_algorithm,
            "session_persistence": dict(pool.session_persistence) if pool.session_persistence else None,
            "tls_enabled": pool.tls_enabled,
            "tls_container_ref": pool.tls_container_ref,
            "ca_tls_container_ref": pool.ca_tls_container_ref,
            "crl_container_ref": pool.crl_container_ref,
            "tls_versions": list(pool.tls_versions) if pool.tls_versions is not None else None,
            "tls_ciphers": pool.tls_ciphers,
            "alpn_protocols": list(pool.alpn_protocols) if pool.alpn_protocols is not None else None,
            "admin_state_up": pool.admin_state_up,
            "tags": _tags(pool.tags),
            "members": [_member_body(m) for m in pool.members],
        }
    )
    if pool.healthmonitor is not None:
        body["healthmonitor"] = _monitor_body(pool.healthmonitor)
    return body


def _rule_body(rule: L7Rule) -> dict[str, Any]:
    return _drop_none(
        {
            "type": rule.type,
            "compare_type": rule.compare_type,
            "key": rule.key,
            "value": rule.value,
            "invert": rule.invert,
            "admin_state_up": rule.admin_state_up,
            "tags": _tags(rule.tags),
        }
    )


def _policy_body(policy: L7Policy, names: dict[str, str]) -> dict[str, Any]:
    return _drop_none(
        {
            "name": policy.name,
            "description": policy.description,
            "action": policy.action,
            "position": policy.position,
            "redirect_pool": {"name": names[policy.redirect_pool_id]} if policy.redirect_pool_id else None,
            "redirect_url": policy.redirect_url,
            "redirect_prefix": policy.redirect_prefix,
            "redirect_http_code": policy.redirect_http_code,
            "admin_state_up": policy.admin_state_up,
            "tags": _tags(policy.tags),
            "rules": [_rule_body(r) for r in policy.rules],
        }
    )


def _listener_body(listener: Listener, names: dict[str, str]) -> dict[str, Any]:
    body = _drop_none(
        {
            "name": listener.name,
            "description": listener.description,
            "protocol": listener.protocol,
            "protocol_port": listener.protocol_port,
            "connection_limit": listener.connection_limit,
            "default_pool": {"name": names[listener.default_pool_id]} if listener.default_pool_id else None,
            "timeout_client_data": listener.timeout_client_data,
            "timeout_member_connect": listener.timeout_member_connect,
            "timeout_member_data": listener.timeout_member_data,
            "timeout_tcp_inspect": listener.timeout_tcp_inspect,
            "allowed_cidrs": list(listener.allowed_cidrs) if listener.allowed_cidrs is not None else None,
            "insert_headers": dict(listener.insert_headers) if listener.insert_headers else None,
            "default_tls_container_ref": listener.default_tls_container_ref,
            "sni_container_refs": list(listener.sni_container_refs) or None,
            "client_ca_tls_container_ref": listener.client_ca_tls_container_ref,
            "client_crl_container_ref": listener.client_crl_container_ref,
            "client_authentication": listener.client_authentication,
            "tls_versions": list(listener.tls_versions) if listener.tls_versions is not None else None,
            "tls_ciphers": listener.tls_ciphers,
            "alpn_protocols": list(listener.alpn_protocols) if listener.alpn_protocols is not None else None,
            "admin_state_up": listener.admin_state_up,
            "tags": _tags(listener.tags),
            "l7policies": [_policy_body(p, names) for p in listener.l7policies] or None,
        }
    )
    if listener.hsts_max_age is not None:  # Octavia accepts the HSTS flags only with a max age
        body["hsts_max_age"] = listener.hsts_max_age
        body["hsts_include_subdomains"] = listener.hsts_include_subdomains
        body["hsts_preload"] = listener.hsts_preload
    return body


def marker_tags(source_id: str, campaign_id: str) -> list[str]:
    return [MARKER_CLONE_OF + source_id, MARKER_CAMPAIGN + campaign_id]


def build_clone_body(
    source: LoadBalancer,
    *,
    campaign_id: str,
    target: TargetChanges = TargetChanges(),
    name: str | None = None,
    vip_address: str | None = None,
) -> dict[str, Any]:
    """The inner object of ``POST /v2/lbaas/loadbalancers`` that recreates ``source``'s whole graph.

    Never carries ids or statuses. ``vip_address`` is set only by the recreate strategy (same address); then the
    additional VIPs keep their addresses too.
    """
    names = pool_names(source)
    source_tags = [t for t in source.tags if not t.startswith((MARKER_CLONE_OF, MARKER_CAMPAIGN))]
    body: dict[str, Any] = _drop_none(
        {
            "name": clone_name(source) if name is None else name,
            "description": source.description,
            "project_id": source.project_id or None,
            "vip_subnet_id": source.vip_subnet_id,
            "vip_network_id": source.vip_network_id,
            "vip_address": vip_address,
            "vip_qos_policy_id": source.vip_qos_policy_id,
            "additional_vips": [
                {"subnet_id": v.subnet_id, **({"ip_address": v.ip_address} if vip_address and v.ip_address else {})}
                for v in source.additional_vips
            ]
            or None,
            "vip_sg_ids": list(source.vip_sg_ids) if source.vip_sg_ids is not None else None,
            "availability_zone": target.availability_zone or source.availability_zone,
            "flavor_id": target.flavor_id or source.flavor_id,
            "provider": target.provider or source.provider,
            "admin_state_up": source.admin_state_up,
            "tags": source_tags + marker_tags(source.id, campaign_id),
        }
    )
    body["listeners"] = [_listener_body(listener, names) for listener in source.listeners]
    body["pools"] = [_pool_body(pool, names[pool.id]) for pool in source.pools]
    return body


# --- invariant I5 -----------------------------------------------------------------------------------------

_VOLATILE = frozenset({"id", "provisioning_status", "operating_status"})


def _strip(value: Any) -> Any:
    if isinstance(value, dict):  # an empty mapping and none are the same to Octavia (insert_headers, persistence)
        return {k: None if v == {} else _strip(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _key(value: Any) -> str:
    return repr(value)


def comparable(lb: LoadBalancer, target: TargetChanges | None = None, *, ignore_name: bool = False) -> dict[str, Any]:
    """``lb``'s graph minus what a clone may differ in: ids, statuses, VIP address and ports, floating IPs,
    amphorae, marker tags, generated pool names and the declared target changes. Invariant I5 is
    ``comparable(source, target) == comparable(clone, target)``."""
    names = pool_names(lb)
    data = to_json(lb)
    for key in ("vip_address", "vip_port_id", "floating_ips", "amphorae", "clone_of", "campaign"):
        data.pop(key, None)
    data["additional_vips"] = sorted(v["subnet_id"] for v in data["additional_vips"])
    data["tags"] = sorted(t for t in data["tags"] if not t.startswith((MARKER_CLONE_OF, MARKER_CAMPAIGN)))
    if ignore_name:
        data.pop("name")
    if target is not None:
        if target.flavor_id:
            data.pop("flavor_id")
            data.pop("topology")
        if target.availability_zone:
            data.pop("availability_zone")
        if target.provider:
            data.pop("provider")
    for pool in data["pools"]:
        name = names[pool["id"]]
        pool["name"] = "" if name.startswith(GENERATED_POOL_PREFIX) else name
        pool["ref"] = name
        pool["members"] = sorted(_strip(pool["members"]), key=_key)
        pool["tags"] = sorted(pool["tags"])
    for listener in data["listeners"]:
        listener["default_pool_id"] = names.get(listener["default_pool_id"] or "")
        for policy in listener["l7policies"]:
            policy["redirect_pool_id"] = names.get(policy["redirect_pool_id"] or "")
            policy["rules"] = sorted(_strip(policy["rules"]), key=_key)
        listener["l7policies"] = sorted(_strip(listener["l7policies"]), key=_key)
    data["pools"] = sorted(_strip(data["pools"]), key=lambda p: p["ref"])
    for pool in data["pools"]:
        pool.pop("ref")
    data["listeners"] = sorted(_strip(data["listeners"]), key=lambda li: (li["protocol"], li["protocol_port"]))
    result: dict[str, Any] = _strip(data)
    return result
