"""The load balancer graph as frozen dataclasses, with a JSON round-trip.

Pure: no I/O. Every backend reads a load balancer into these types; clone.py turns them into a create body.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints

T = TypeVar("T")

MARKER_CLONE_OF = "lbswap:clone-of="
MARKER_CAMPAIGN = "lbswap:campaign="
MARKER_TEMP_FIP = "lbswap:temp-fip"


@dataclass(frozen=True)
class HealthMonitor:
    type: str
    delay: int
    timeout: int
    max_retries: int
    max_retries_down: int = 3
    http_method: str | None = None
    url_path: str | None = None
    http_version: float | None = None
    domain_name: str | None = None
    expected_codes: str | None = None
    name: str = ""
    admin_state_up: bool = True
    tags: tuple[str, ...] = ()
    id: str = ""


@dataclass(frozen=True)
class Member:
    address: str
    protocol_port: int
    weight: int = 1
    subnet_id: str | None = None
    backup: bool = False
    monitor_address: str | None = None
    monitor_port: int | None = None
    name: str = ""
    admin_state_up: bool = True
    tags: tuple[str, ...] = ()
    id: str = ""
    operating_status: str = "NO_MONITOR"


@dataclass(frozen=True)
class Pool:
    name: str
    protocol: str
    lb_algorithm: str
    description: str = ""
    session_persistence: dict[str, Any] | None = None
    tls_enabled: bool = False
    tls_container_ref: str | None = None
    ca_tls_container_ref: str | None = None
    crl_container_ref: str | None = None
    tls_versions: tuple[str, ...] | None = None
    tls_ciphers: str | None = None
    alpn_protocols: tuple[str, ...] | None = None
    members: tuple[Member, ...] = ()
    healthmonitor: HealthMonitor | None = None
    admin_state_up: bool = True
    tags: tuple[str, ...] = ()
    id: str = ""


@dataclass(frozen=True)
class L7Rule:
    type: str
    compare_type: str
    value: str
    key: str | None = None
    invert: bool = False
    admin_state_up: bool = True
    tags: tuple[str, ...] = ()
    id: str = ""


@dataclass(frozen=True)
class L7Policy:
    action: str
    position: int = 1
    name: str = ""
    description: str = ""
    redirect_pool_id: str | None = None
    redirect_url: str | None = None
    redirect_prefix: str | None = None
    redirect_http_code: int | None = None
    rules: tuple[L7Rule, ...] = ()
    admin_state_up: bool = True
    tags: tuple[str, ...] = ()
    id: str = ""


@dataclass(frozen=True)
class Listener:
    protocol: str
    protocol_port: int
    name: str = ""
    description: str = ""
    connection_limit: int = -1
    default_pool_id: str | None = None
    timeout_client_data: int | None = 50000
    timeout_member_connect: int | None = 5000
    timeout_member_data: int | None = 50000
    timeout_tcp_inspect: int | None = 0
    allowed_cidrs: tuple[str, ...] | None = None
    insert_headers: dict[str, str] | None = None
    default_tls_container_ref: str | None = None
    sni_container_refs: tuple[str, ...] = ()
    client_ca_tls_container_ref: str | None = None
    client_crl_container_ref: str | None = None
    client_authentication: str = "NONE"
    tls_versions: tuple[str, ...] | None = None
    tls_ciphers: str | None = None
    alpn_protocols: tuple[str, ...] | None = None
    hsts_max_age: int | None = None
    hsts_include_subdomains: bool = False
    hsts_preload: bool = False
    l7policies: tuple[L7Policy, ...] = ()
    admin_state_up: bool = True
    tags: tuple[str, ...] = ()
    id: str = ""


@dataclass(frozen=True)
class AdditionalVip:
    subnet_id: str
    ip_address: str | None = None
    port_id: str | None = None


@dataclass(frozen=True)
class FloatingIP:
    id: str
    floating_ip_address: str
    port_id: str | None
    fixed_ip_address: str | None
    revision_number: int = 0
    floating_network_id: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Amphora:
    id: str
    role: str  # STANDALONE | MASTER | BACKUP
    image_id: str
    status: str = "ALLOCATED"
    compute_id: str = ""
    created_at: str | None = None  # ISO 8601 with its UTC offset; None where the cloud does not say
    cert_expiration: str | None = None  # the amphora certificate's expiry, ISO 8601 like created_at


@dataclass(frozen=True)
class LoadBalancer:
    id: str
    name: str
    vip_subnet_id: str
    description: str = ""
    project_id: str = ""
    vip_network_id: str | None = None
    vip_address: str | None = None
    vip_port_id: str | None = None
    vip_qos_policy_id: str | None = None
    additional_vips: tuple[AdditionalVip, ...] = ()
    availability_zone: str | None = None
    flavor_id: str | None = None
    provider: str = "amphora"
    topology: str = "SINGLE"  # SINGLE | ACTIVE_STANDBY (from the flavor; read-only in Octavia's API)
    admin_state_up: bool = True
    vip_sg_ids: tuple[str, ...] | None = None
    tags: tuple[str, ...] = ()
    provisioning_status: str = "ACTIVE"
    operating_status: str = "ONLINE"
    listeners: tuple[Listener, ...] = ()
    pools: tuple[Pool, ...] = ()
    floating_ips: tuple[FloatingIP, ...] = ()
    amphorae: tuple[Amphora, ...] = ()

    @property
    def clone_of(self) -> str | None:
        """The source id if this load balancer is an lbswap clone."""
        return tag_value(self.tags, MARKER_CLONE_OF)

    @property
    def campaign(self) -> str | None:
        return tag_value(self.tags, MARKER_CAMPAIGN)

    def pool_by_id(self, pool_id: str) -> Pool:
        for pool in self.pools:
            if pool.id == pool_id:
                return pool
        raise KeyError(pool_id)

    def vip_port_ids(self) -> tuple[str, ...]:
        ports = [self.vip_port_id] if self.vip_port_id else []
        ports += [v.port_id for v in self.additional_vips if v.port_id]
        return tuple(ports)


@dataclass(frozen=True)
class LBSummary:
    """What a cheap poll returns: enough to wait on a status and to find clones by tag."""

    id: str
    name: str
    provisioning_status: str
    operating_status: str
    vip_address: str | None = None
    vip_port_id: str | None = None
    tags: tuple[str, ...] = ()
    project_id: str = ""
    provider: str = "amphora"
    flavor_id: str | None = None

    @property
    def clone_of(self) -> str | None:
        return tag_value(self.tags, MARKER_CLONE_OF)

    @property
    def campaign(self) -> str | None:
        return tag_value(self.tags, MARKER_CAMPAIGN)


@dataclass(frozen=True)
class Stats:
    active_connections: int = 0
    total_connections: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    request_errors: int = 0


@dataclass(frozen=True)
class Flavor:
    id: str
    name: str
    provider: str = "amphora"
    topology: str | None = None
    amp_image_tag: str | None = None
    enabled: bool = True
    availability_zone: str | None = None


@dataclass(frozen=True)
class Image:
    id: str
    name: str
    tags: tuple[str, ...] = ()
    created_at: str = ""
    owner: str = ""  # the project that owns the image (Octavia's amp_image_owner_id filters on it)


@dataclass(frozen=True)
class QuotaUsage:
    """Limits and usage per Octavia/Neutron resource kind; limit -1 means unlimited."""

    limits: dict[str, int] = field(default_factory=dict)
    in_use: dict[str, int] = field(default_factory=dict)

    def free(self, kind: str) -> int | None:
        limit = self.limits.get(kind, -1)
        if limit < 0:
            return None
        return limit - self.in_use.get(kind, 0)


@dataclass(frozen=True)
class StackResource:
    """A load balancer held by an orchestration stack (Heat; Magnum clusters are Heat stacks too)."""

    stack_id: str
    stack_name: str
    resource_name: str
    physical_id: str
    owner: str = "heat"  # heat | magnum


@dataclass(frozen=True)
class Provider:
    name: str
    listener_protocols: tuple[str, ...] = ("HTTP", "HTTPS", "TCP", "UDP", "TERMINATED_HTTPS", "SCTP", "PROMETHEUS")
    lb_algorithms: tuple[str, ...] = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT")


def tag_value(tags: typing.Iterable[str], prefix: str) -> str | None:
    for tag in tags:
        if tag.startswith(prefix):
            return tag[len(prefix) :]
    return None


# --- JSON round trip -------------------------------------------------------------------------------------


def to_json(obj: Any) -> Any:
    """A dataclass graph as plain JSON types (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_json(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    return obj


def from_json(cls: type[T], data: Any) -> T:
    """Rebuild a dataclass graph from :func:`to_json` output; unknown keys are ignored."""
    return typing.cast(T, _convert(cls, data))


def _convert(tp: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(args[0], data) if len(args) == 1 else data
    if origin is tuple:
        (item,) = typing.get_args(tp)[:1]
        return tuple(_convert(item, v) for v in data)
    if origin is dict or tp is dict:
        return dict(data)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = _hints(tp)
        kwargs = {f.name: _convert(hints[f.name], data[f.name]) for f in dataclasses.fields(tp) if f.name in data}
        return tp(**kwargs)
    if tp is float and isinstance(data, int):
        return float(data)
    return data


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(tp: type) -> dict[str, Any]:
    if tp not in _HINTS:
        _HINTS[tp] = get_type_hints(tp)
    return _HINTS[tp]
