"""The openstack backend's probe-netns option (``openstack:CLOUD?probe-netns=NS``): the spec it is read from and
written back to, and how a probe from the namespace names the load balancer that served it (the address the
member echoed, mapped through Octavia's amphora API, or Neutron's port of an amphora's server). No cloud, no root:
the namespace probe and the API calls are stand-ins."""

from __future__ import annotations

from typing import Any

import pytest

from lbswap.clouds import peer_probe
from lbswap.clouds.openstack.cloud import OpenStackCloud, parse_spec
from lbswap.errors import CloudError, ConfigError


@pytest.mark.parametrize(
    ("arg", "parsed"),
    [
        (None, (None, None)),
        ("", (None, None)),
        ("prod", ("prod", None)),
        ("prod?probe-netns=lcx-1a2b", ("prod", "lcx-1a2b")),
        ("?probe-netns=client_ns.1", (None, "client_ns.1")),
    ],
)
def test_the_spec_names_the_cloud_and_the_namespace(arg: str | None, parsed: tuple[str | None, str | None]) -> None:
    assert parse_spec(arg) == parsed


@pytest.mark.parametrize("arg", ["prod?probe-ns=x", "prod?probe-netns=../x", "prod?probe-netns=", "prod?x"])
def test_an_unknown_option_or_a_namespace_name_ip_netns_would_not_make_is_refused(arg: str) -> None:
    with pytest.raises(ConfigError, match="probe-netns"):
        parse_spec(arg)


def make_cloud(name: str | None, netns: str | None, octavia: dict[str, list[dict[str, Any]]]) -> Any:
    """An OpenStackCloud without a connection: its listing calls answer from ``octavia`` (by query), its
    Neutron port lookup from the ``ports`` entry."""
    cloud: Any = OpenStackCloud.__new__(OpenStackCloud)
    cloud._name, cloud._probe_netns, cloud._amphorae_forbidden = name, netns, False
    cloud.calls = []

    def listing(path: str, key: str, what: str, **params: Any) -> list[dict[str, Any]]:
        query = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
        cloud.calls.append(query)
        return octavia.get(query, [])

    def neutron(method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        cloud.calls.append(f"{method} {path} {kwargs.get('params')}")
        return {"ports": octavia.get("ports", [])}

    cloud._list, cloud._neutron = listing, neutron
    return cloud


@pytest.mark.parametrize(
    ("name", "netns", "spec"),
    [
        ("prod", "lcx-1", "openstack:prod?probe-netns=lcx-1"),
        (None, "lcx-1", "openstack:?probe-netns=lcx-1"),
        ("prod", None, "openstack:prod"),
        (None, None, "openstack"),
    ],
)
def test_the_spec_keeps_the_option_so_that_resume_probes_from_the_same_namespace(
    name: str | None, netns: str | None, spec: str
) -> None:
    cloud = make_cloud(name, netns, {})
    assert cloud.spec() == spec
    assert parse_spec(spec.partition(":")[2] or None) == (name, netns)


ANSWER = {"ok": True, "status": 200, "seconds": 0.01, "peer": "10.252.0.17", "peer_at": 1700000000.5}


def test_a_probe_from_the_namespace_is_served_by_the_live_amphora_with_the_address_the_member_saw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[str, list[str]]] = []

    def in_netns(netns: str, args: list[str], timeout: float) -> dict[str, Any]:
        asked.append((netns, list(args)))
        return dict(ANSWER)

    monkeypatch.setattr(peer_probe, "in_netns", in_netns)
    amps = [
        {"vrrp_ip": "10.252.0.17", "status": "ALLOCATED", "loadbalancer_id": "lb-clone", "updated_at": "2026-01-01"},
        {"vrrp_ip": "10.252.0.17", "status": "DELETED", "loadbalancer_id": "lb-old", "updated_at": "2026-02-01"},
        # an API that ignored the filter lists every amphora: the others do not count
        {"vrrp_ip": "10.252.0.99", "status": "ALLOCATED", "loadbalancer_id": "lb-other", "updated_at": "2026-03-01"},
    ]
    cloud = make_cloud("prod", "lcx-1", {"vrrp_ip=10.252.0.17": amps})
    result = cloud.probe_listener("10.253.0.9", 80, "HTTP", host="web", timeout=2.0)
    assert result.ok and result.status == 200
    assert result.served_by == "lb-clone" and result.served_at == 1700000000.5
    assert asked == [("lcx-1", ["10.253.0.9", "80", "HTTP", "--path", "/", "--timeout", "2.0", "--host", "web"])]


def test_a_member_port_address_is_found_through_neutron_and_the_amphora_of_its_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(peer_probe, "in_netns", lambda netns, args, timeout: dict(ANSWER))
    octavia = {
        "ports": [
            {"id": "p1", "device_id": "server-1", "fixed_ips": [{"ip_address": "10.252.0.17"}]},
            {"id": "p2", "device_id": "server-2", "fixed_ips": [{"ip_address": "10.252.0.18"}]},  # ignored filter
        ],
        "compute_id=server-1": [{"compute_id": "server-1", "status": "ALLOCATED", "loadbalancer_id": "lb-source"}],
        "compute_id=server-2": [{"compute_id": "server-2", "status": "ALLOCATED", "loadbalancer_id": "lb-other"}],
    }
    cloud = make_cloud("prod", "lcx-1", octavia)
    assert cloud.probe_listener("10.253.0.9", 80, "HTTP").served_by == "lb-source"
    assert "GET /ports {'fixed_ips': 'ip_address=10.252.0.17'}" in cloud.calls


def test_no_served_by_without_a_peer_or_an_amphora_and_unreachable_when_the_namespace_probe_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(peer_probe, "in_netns", lambda netns, args, timeout: {**ANSWER, "peer": None})
    cloud = make_cloud("prod", "lcx-1", {})
    result = cloud.probe_listener("10.253.0.9", 80, "HTTP")
    assert result.ok and result.served_by is None and result.served_at is None
    assert cloud.calls == []  # nobody to look up
    monkeypatch.setattr(peer_probe, "in_netns", lambda netns, args, timeout: dict(ANSWER))
    assert cloud.probe_listener("10.253.0.9", 80, "HTTP").served_by is None  # no amphora has the address

    def fails(netns: str, args: list[str], timeout: float) -> dict[str, Any]:
        raise CloudError("no network namespace 'lcx-1' (ip netns list)")

    monkeypatch.setattr(peer_probe, "in_netns", fails)
    result = cloud.probe_listener("10.253.0.9", 80, "HTTP")
    assert not result.ok and not result.reachable and "lcx-1" in (result.error or "")


def test_in_netns_refuses_a_namespace_that_is_not_there() -> None:
    with pytest.raises(CloudError, match="no network namespace"):
        peer_probe.in_netns("lbswap-test-no-such-namespace", ["10.0.0.1", "80", "HTTP"], 5.0)
    with pytest.raises(CloudError, match="no network namespace"):
        peer_probe.in_netns("../../etc", ["10.0.0.1", "80", "HTTP"], 5.0)
