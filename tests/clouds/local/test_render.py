"""Golden-file tests for the local data plane's pure rendering (haproxy, nftables, keepalived).

Regenerate after an intended change with ``LBSWAP_UPDATE_GOLDEN=1 pytest tests/clouds/local``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from lbswap.clouds.local import render

GOLDEN = Path(__file__).parent / "golden"

LB: dict[str, Any] = {
    "id": "lb-1",
    "vip_address": "10.0.2.10",
    "listeners": [
        {
            "id": "listener-http",
            "protocol": "HTTP",
            "protocol_port": 80,
            "default_pool_id": "pool-web",
            "timeout_client_data": 120000,
            "allowed_cidrs": ["198.51.100.0/24"],
            "connection_limit": -1,
        },
        {"id": "listener-tcp", "protocol": "TCP", "protocol_port": 5432, "default_pool_id": "pool-tcp"},
    ],
    "pools": [
        {
            "id": "pool-web",
            "protocol": "HTTP",
            "lb_algorithm": "LEAST_CONNECTIONS",
            "members": [
                {"id": "m-1", "address": "10.0.1.10", "protocol_port": 8080, "weight": 2},
                {"id": "m-2", "address": "10.0.1.11", "protocol_port": 8080, "backup": True},
            ],
            "healthmonitor": {"type": "HTTP", "delay": 1, "timeout": 1, "max_retries": 2, "url_path": "/healthz"},
        },
        {
            "id": "pool-tcp",
            "protocol": "TCP",
            "lb_algorithm": "SOURCE_IP",
            "members": [{"id": "m-3", "address": "10.0.1.10", "protocol_port": 8080, "admin_state_up": False}],
        },
    ],
}
AMPHORA = {"id": "amp-1", "role": "MASTER", "address": "10.0.3.10"}


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("LBSWAP_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; regenerate with LBSWAP_UPDATE_GOLDEN=1 if intended"


@pytest.mark.parametrize("template", render.TEMPLATES)
def test_haproxy(template: str) -> None:
    image = {"name": f"amphora-{template}", "template": template}
    text = render.render_haproxy(LB, amphora=AMPHORA, image=image, stats_socket="/run/a1.sock")
    check(f"haproxy-{template}.cfg", text)


def test_haproxy_unknown_template() -> None:
    with pytest.raises(ValueError, match="unknown haproxy template"):
        render.render_haproxy(LB, amphora=AMPHORA, image={"name": "x", "template": "v9"}, stats_socket="/s")


def test_nft_ruleset() -> None:
    fips = [
        {"floating_ip_address": "203.0.113.11", "fixed_ip_address": "10.0.2.11"},
        {"floating_ip_address": "203.0.113.10", "fixed_ip_address": "10.0.2.10"},
        {"floating_ip_address": "203.0.113.12", "fixed_ip_address": None},  # disassociated
        {"floating_ip_address": "203.0.113.13", "fixed_ip_address": "10.0.2.10"},  # a second FIP on one VIP
    ]
    check("fip.nft", render.render_nft(fips))


def test_nft_empty() -> None:
    check("fip-empty.nft", render.render_nft([]))


def test_nft_move_changes_only_the_mapping() -> None:
    before = render.render_nft([{"floating_ip_address": "203.0.113.10", "fixed_ip_address": "10.0.2.10"}])
    after = render.render_nft([{"floating_ip_address": "203.0.113.10", "fixed_ip_address": "10.0.2.11"}])
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert changed == [
        ("        elements = { 203.0.113.10 : 10.0.2.10 }", "        elements = { 203.0.113.10 : 10.0.2.11 }"),
        ("        elements = { 10.0.2.10 : 203.0.113.10 }", "        elements = { 10.0.2.11 : 203.0.113.10 }"),
    ]


@pytest.mark.parametrize("role", ["MASTER", "BACKUP"])
def test_keepalived(role: str) -> None:
    amphora = {**AMPHORA, "role": role}
    check(f"keepalived-{role.lower()}.conf", render.render_keepalived(LB, amphora=amphora, prefix=16, router_id=7))
