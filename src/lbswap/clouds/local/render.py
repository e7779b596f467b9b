"""Pure rendering for the local data plane: haproxy configurations, the floating IP nftables ruleset and the
keepalived VRRP configuration, each as text. Nothing here touches the system; apply.py writes and loads it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import resources
from string import Template
from typing import Any

MAXCONN = 8000  # haproxy cannot raise its FD limit past 20000 here; 8000 fits (local-dataplane-facts.md)
NFT_TABLE = "lbswap_fip"
FAULT_TABLE = "lbswap_fault"
ALGORITHMS = {"ROUND_ROBIN": "roundrobin", "LEAST_CONNECTIONS": "leastconn", "SOURCE_IP": "source"}
TEMPLATES = ("v1", "v2")


def _template(name: str) -> Template:
    if name not in TEMPLATES:
        raise ValueError(f"unknown haproxy template {name!r}")
    text = resources.files("lbswap.clouds.local").joinpath("templates", f"haproxy-{name}.cfg").read_text()
    return Template(text)


def _ms(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int) and value > 0 else default


def render_haproxy(
    lb: Mapping[str, Any],
    *,
    amphora: Mapping[str, Any],
    image: Mapping[str, Any],
    stats_socket: str,
    started_at: float = 0.0,
) -> str:
    """The haproxy configuration of one amphora: the image's template, then a frontend per listener and a
    backend per pool. HTTP responses name the amphora and image in headers; every backend connects from
    the amphora's own address, so a member can tell a TCP client which amphora it came through. An image
    published with a fault gets it here (see :func:`fault_rules`), from ``fault_after`` s after ``started_at``."""
    head = _template(str(image.get("template", "v1"))).substitute(maxconn=MAXCONN, stats_socket=stats_socket)
    lines = [head.rstrip("\n"), ""]
    vip = lb["vip_address"]
    for listener in lb.get("listeners", []):
        mode = "http" if listener["protocol"] == "HTTP" else "tcp"
        lines += [
            f"frontend {listener['id']}",
            f"    mode {mode}",
            f"    bind {vip}:{listener['protocol_port']}",
            f"    maxconn {_connection_limit(listener)}",
            f"    timeout client {_ms(listener.get('timeout_client_data'), 50000)}ms",
        ]
        lines += fault_rules(image, mode, fault_from(image, started_at))
        if mode == "http":
            lines += [
                "    option httplog",
                f"    http-response set-header X-Lbswap-Amphora {amphora['id']}",
                f"    http-response set-header X-Lbswap-Image {image['name']}",
            ]
        for cidr in listener.get("allowed_cidrs") or []:
            lines.append(f"    tcp-request connection reject if !{{ src {cidr} }}")
        if listener.get("default_pool_id"):
            lines.append(f"    default_backend {listener['default_pool_id']}")
        lines.append("")
    for pool in lb.get("pools", []):
        lines += _backend(pool, amphora, lb.get("listeners", []))
    return "\n".join(lines).rstrip("\n") + "\n"


FAULTS = ("refuse", "http-503", "reset", "stall")
STALL_SECONDS = 3600  # "never answers" within any probe's patience


def fault_from(image: Mapping[str, Any], started_at: float) -> int | None:
    """Epoch second from which an amphora started at ``started_at`` shows its image's fault (None: no fault;
    0: from the start)."""
    if not image.get("fault"):
        return None
    after = float(image.get("fault_after") or 0.0)
    return int(started_at + after + 0.999) if after > 0 else 0


def fault_rules(image: Mapping[str, Any], mode: str, since: int | None) -> list[str]:
    """A frontend's lines for its image's fault. ``http-503``: every request answered 503 (on a TCP listener,
    which has no HTTP to answer with, the connection is reset); ``reset``: the connection is reset right after
    the accept; ``stall``: accepted, never answered. ``refuse`` is no haproxy rule (haproxy would still accept):
    see :func:`render_fault_nft`. ``since`` from :func:`fault_from`: haproxy's ``date`` gates the rules."""
    fault = image.get("fault")
    if since is None or fault not in ("http-503", "reset", "stall"):
        return []
    when = f" if {{ date ge {since} }}" if since else ""
    if fault == "http-503" and mode == "http":
        return [f"    http-request return status 503{when}"]
    if fault in ("http-503", "reset"):
        return [f"    tcp-request connection reject{when}"]
    if mode == "http":
        return [f"    timeout tarpit {STALL_SECONDS}s", f"    http-request tarpit{when}"]
    lines = [f"    tcp-request inspect-delay {STALL_SECONDS}s"]
    if since:
        lines.append(f"    tcp-request content accept if !{{ date ge {since} }}")
    return [*lines, "    tcp-request content accept if WAIT_END"]


def render_fault_nft(image: Mapping[str, Any], vip: str, ports: Iterable[int], since: int | None) -> str | None:
    """For an image with the ``refuse`` fault: an nftables table in the amphora's namespace that answers every
    new connection to the listeners with a reset, as a host where nothing listens (None for any other image).
    ``meta time`` gates it from ``since`` (epoch seconds) on, so it needs no reload later."""
    listed = sorted(set(ports))
    if since is None or image.get("fault") != "refuse" or not listed:
        return None
    when = f" meta time >= {since}" if since else ""
    port_set = "{ " + ", ".join(str(p) for p in listed) + " }"
    return "\n".join(
        [
            f"table ip {FAULT_TABLE}",
            f"delete table ip {FAULT_TABLE}",
            f"table ip {FAULT_TABLE} {{",
            "    chain input {",
            "        type filter hook input priority filter; policy accept;",
            f"        ip daddr {vip} tcp dport {port_set} tcp flags syn{when} reject with tcp reset",
            "    }",
            "}",
            "",
        ]
    )


def _connection_limit(listener: Mapping[str, Any]) -> int:
    limit = listener.get("connection_limit")
    return min(int(limit), MAXCONN) if isinstance(limit, int) and limit > 0 else MAXCONN


def _backend(pool: Mapping[str, Any], amphora: Mapping[str, Any], listeners: Iterable[Mapping[str, Any]]) -> list[str]:
    mode = "http" if pool["protocol"] == "HTTP" else "tcp"
    timeouts = [li for li in listeners if li.get("default_pool_id") == pool["id"]]
    member_data = _ms(timeouts[0].get("timeout_member_data"), 50000) if timeouts else 50000
    member_connect = _ms(timeouts[0].get("timeout_member_connect"), 5000) if timeouts else 5000
    lines = [
        f"backend {pool['id']}",
        f"    mode {mode}",
        f"    balance {ALGORITHMS.get(pool['lb_algorithm'], 'roundrobin')}",
        f"    source {amphora['address']}",
        f"    timeout server {member_data}ms",
        f"    timeout connect {member_connect}ms",
    ]
    monitor = pool.get("healthmonitor")
    check = ""
    if monitor:
        if monitor["type"] in ("HTTP", "HTTPS"):
            method = monitor.get("http_method") or "GET"
            lines.append(f"    option httpchk {method} {monitor.get('url_path') or '/'}")
            codes = monitor.get("expected_codes") or "200"
            lines.append(f"    http-check expect status {codes.split(',')[0].split('-')[0]}")
        rise, fall = int(monitor.get("max_retries", 3)), int(monitor.get("max_retries_down", 3))
        check = f" check inter {int(monitor['delay'])}s rise {rise} fall {fall}"
    for member in pool.get("members", []):
        server = (
            f"    server {member['id']} {member['address']}:{member['protocol_port']} weight {member.get('weight', 1)}"
        )
        if member.get("backup"):
            server += " backup"
        if not member.get("admin_state_up", True):
            server += " disabled"
        lines.append(server + check)
    lines.append("")
    return lines


def render_nft(fips: Iterable[Mapping[str, Any]]) -> str:
    """The router's floating IPs as one nftables table, replaced whole in one ``nft -f`` transaction: a
    DNAT map (floating IP -> fixed IP) for inbound flows and an SNAT map (fixed IP -> floating IP) for
    outbound ones. Established flows keep their translation in conntrack, as with Neutron's L3 agent."""
    dnat: list[str] = []
    snat: dict[str, str] = {}
    for fip in sorted(fips, key=lambda f: str(f["floating_ip_address"])):
        if not fip.get("fixed_ip_address"):
            continue
        dnat.append(f"{fip['floating_ip_address']} : {fip['fixed_ip_address']}")
        snat.setdefault(fip["fixed_ip_address"], fip["floating_ip_address"])  # one source address per fixed IP
    snat_elements = [f"{fixed} : {floating}" for fixed, floating in sorted(snat.items())]
    lines = [
        f"table ip {NFT_TABLE}",
        f"delete table ip {NFT_TABLE}",
        f"table ip {NFT_TABLE} {{",
        "    map dnat_fip {",
        "        type ipv4_addr : ipv4_addr",
    ]
    if dnat:
        lines.append("        elements = { " + ", ".join(dnat) + " }")
    lines += ["    }", "    map snat_fip {", "        type ipv4_addr : ipv4_addr"]
    if snat_elements:
        lines.append("        elements = { " + ", ".join(snat_elements) + " }")
    lines += [
        "    }",
        "    chain prerouting {",
        "        type nat hook prerouting priority dstnat; policy accept;",
        "        dnat to ip daddr map @dnat_fip",
        "    }",
        "    chain postrouting {",
        "        type nat hook postrouting priority srcnat; policy accept;",
        '        oifname "ext0" snat to ip saddr map @snat_fip',
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_keepalived(lb: Mapping[str, Any], *, amphora: Mapping[str, Any], prefix: int, router_id: int) -> str:
    """VRRP for an ACTIVE_STANDBY pair: the VIP as virtual address, MASTER priority 100 and BACKUP 90,
    advertisements every second, multicast on the tenant network (a rebuilt peer with a new address is
    heard without reconfiguring the survivor); ``router_id`` is unique per load balancer on the bridge."""
    master = amphora["role"] == "MASTER"
    return "\n".join(
        [
            "global_defs {",
            f"    router_id {str(amphora['id'])[:16]}",
            "    vrrp_garp_master_refresh 5",
            "}",
            f"vrrp_instance vip{router_id} {{",
            f"    state {'MASTER' if master else 'BACKUP'}",
            "    interface eth0",
            f"    virtual_router_id {router_id}",
            f"    priority {100 if master else 90}",
            "    advert_int 1",
            "    virtual_ipaddress {",
            f"        {lb['vip_address']}/{prefix} dev eth0",
            "    }",
            "}",
            "",
        ]
    )
