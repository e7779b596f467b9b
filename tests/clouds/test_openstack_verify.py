"""Tier 2: the verify's temporary floating IP on the real Neutron and Octavia APIs (scripts/openstack-stack.sh):
made in the load balancer's project with lbswap's tags, on the clone's VIP port, released before the flip; left
by a crash during the verify, then released by `lbswap resume`, `rollback` and `recover`; a project without
floating IP quota for it is a pre-flight finding.

The stack's floating IPs lead nowhere, so no probe may send a packet to them: in process, the backend's
``probe_listener`` is replaced by a stand-in that records what it was asked and checks Neutron at that moment;
a real ``lbswap`` process gets the same through lbswap.clouds.reach's test hook LBSWAP_TEST_PROBE_STANDIN (and
dies before its first probe with LBSWAP_TEST_CRASH_AT_PROBE=1). Everything else is real: Neutron's floating IPs,
tags, quotas and Octavia's load balancers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lbswap.clouds.base import ProbeResult
from lbswap.clouds.openstack import OpenStackCloud
from lbswap.journal import Journal
from lbswap.model import MARKER_CAMPAIGN, MARKER_CLONE_OF, MARKER_TEMP_FIP, LoadBalancer
from lbswap.plan import PlanOptions, make_plans
from lbswap.workflow.runner import run_campaign
from lbswap.workflow.tasks import SwapOptions
from tests.clouds import openstack_stack as stack
from tests.clouds.test_openstack import _env, check_done, check_rolled_back, clouds_yaml, lbswap, make_source

__all__ = ["clouds_yaml", "lbswap"]  # fixtures shared with test_openstack.py

pytestmark = [
    pytest.mark.openstack,
    pytest.mark.filterwarnings("ignore::openstack.warnings._RemovedInSDKWarning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.OpenStackDeprecationWarning"),
]

# the real process's options: no drain, no watch (its probes would be stand-ins too, but it proves nothing here)
QUICK = ("--drain-timeout", "0", "--watch", "0", "-f", "json")


def temp_fips(conn: Any, source_id: str | None = None) -> list[Any]:
    """lbswap's temporary floating IPs in Neutron, found by tag (of one source's swaps when given)."""
    found = list(conn.network.ips(tags=MARKER_TEMP_FIP))
    return [f for f in found if source_id is None or MARKER_CLONE_OF + source_id in (f.tags or [])]


class StandIn(OpenStackCloud):
    """The openstack backend whose probes send nothing: each is recorded with what Neutron shows at that moment
    (the temporary floating IPs of the swap), and answered as a healthy listener (or ``clone_status``) would."""

    def __init__(self, conn: Any, source: LoadBalancer, *, clone_status: int = 200) -> None:
        super().__init__(stack.CLOUD)
        self.conn = conn
        self.source = source
        self.clone_status = clone_status
        self.probes: list[tuple[str, int, str, list[Any]]] = []
        self.temp_at_flips: list[int] = []
        self.probes_before_flip = 0

    def probe_listener(self, address: str, port: int, protocol: str, **kwargs: Any) -> ProbeResult:
        self.probes.append((address, port, protocol, temp_fips(self.conn, self.source.id)))
        http = protocol in ("HTTP", "TERMINATED_HTTPS")
        on_source = address == self.source.floating_ips[0].floating_ip_address
        return ProbeResult(ok=True, status=(200 if on_source else self.clone_status) if http else None)

    def move_floating_ip(self, fip_id: str, **kwargs: Any) -> Any:
        self.temp_at_flips.append(len(temp_fips(self.conn, self.source.id)))
        self.probes_before_flip = len(self.probes)
        return super().move_floating_ip(fip_id, **kwargs)


def test_temporary_floating_ip_lifecycle(conn: Any, net: stack.Net, cloud: OpenStackCloud, tmp_path: Path) -> None:
    """Made with lbswap's tags in the load balancer's project, on the clone's VIP port, probed through beside
    the source's floating IP, released before the flip; UDP without a payload is recorded as not verified."""
    source = make_source(conn, net, cloud, stack.full_body(net, stack.unique("verify")))
    front = source.floating_ips[0].floating_ip_address
    backend = StandIn(conn, source)
    try:
        (plan,) = make_plans(backend, [source.id], PlanOptions())
        assert plan.checks.verify and not plan.blocking, plan
        assert dict(plan.checks.listeners)["UDP:53 (dns)"] == "not verified: UDP without --verify-udp-payload"
        result = run_campaign(backend, Journal(tmp_path / "j.sqlite"), [plan], SwapOptions(drain_timeout=0, watch=0))
        swap = result.swaps[0].to_json()
        clone = check_done(conn, backend, source, swap)
    finally:
        backend.close()
    assert swap["verify"]["outcome"] == "passed", swap["verify"]
    listeners = swap["verify"]["listeners"]
    assert listeners["UDP:53 (dns)"] == "not verified: UDP without --verify-udp-payload"
    assert listeners["HTTP:80 (http)"] == "same (status 200)" and listeners["TCP:443 (tcp)"] == "same (connected)"
    on_clone = [p for p in backend.probes if p[0] != front]
    assert {(p[1], p[2]) for p in on_clone} == {(80, "HTTP"), (443, "TCP")}  # each listener, UDP not probed
    assert {(p[1], p[2]) for p in backend.probes if p[0] == front} == {(80, "HTTP"), (443, "TCP")}
    (temp,) = {p[0] for p in on_clone}
    for _address, _port, _protocol, seen in on_clone:  # while probing: exactly one, as lbswap made it
        (fip,) = seen
        assert fip.floating_ip_address == temp
        assert fip.port_id == clone.vip_port_id and fip.fixed_ip_address == clone.vip_address
        assert fip.project_id == stack.PROJECT  # the load balancer's project, whose quota the plan checks
        assert fip.floating_network_id == net.external_id
        assert {MARKER_TEMP_FIP, MARKER_CAMPAIGN + result.campaign_id, MARKER_CLONE_OF + source.id} <= set(fip.tags)
    assert backend.temp_at_flips == [0]  # released before the flip
    assert temp_fips(conn, source.id) == []
    assert temp not in {f.floating_ip_address for f in conn.network.ips()}


def test_the_watch_probes_through_the_moved_floating_ip_only(
    conn: Any, net: stack.Net, cloud: OpenStackCloud, tmp_path: Path
) -> None:
    source = make_source(conn, net, cloud, stack.small_body(net, stack.unique("watch")))
    front = source.floating_ips[0].floating_ip_address
    backend = StandIn(conn, source)
    try:
        plans = make_plans(backend, [source.id], PlanOptions(watch=2))
        options = SwapOptions(drain_timeout=0, watch=2, watch_interval=0.5, stats_interval=0.5)
        swap = run_campaign(backend, Journal(tmp_path / "j.sqlite"), plans, options).swaps[0].to_json()
        check_done(conn, backend, source, swap)
    finally:
        backend.close()
    assert plans[0].checks.watch_seconds == 2
    assert swap["watch"]["outcome"] == "passed" and swap["watch"]["samples"] > 0, swap["watch"]
    watched = backend.probes[backend.probes_before_flip :]
    assert len(watched) >= 2 and {p[0] for p in watched} == {front}, watched
    assert all(p[3] == [] for p in watched)  # no temporary floating IP after the flip


def test_failed_verify_rolls_back_and_releases_the_temporary_floating_ip(
    conn: Any, net: stack.Net, cloud: OpenStackCloud, tmp_path: Path
) -> None:
    source = make_source(conn, net, cloud, stack.small_body(net, stack.unique("verify-503")))
    backend = StandIn(conn, source, clone_status=503)
    try:
        plans = make_plans(backend, [source.id], PlanOptions())
        options = SwapOptions(drain_timeout=0, watch=0, verify_settle=0)
        swap = run_campaign(backend, Journal(tmp_path / "j.sqlite"), plans, options).swaps[0].to_json()
    finally:
        backend.close()
    assert any(p[3] for p in backend.probes), "never probed through a temporary floating IP"
    assert swap["verify"]["outcome"] == "failed"
    assert "HTTP:80 (web)" in swap["error"] and "503" in swap["error"], swap["error"]
    assert backend.temp_at_flips == []  # no client ever saw the clone
    check_rolled_back(conn, cloud, source, swap)
    assert temp_fips(conn, source.id) == []


def _killed_in_verify(
    conn: Any, net: stack.Net, cloud: OpenStackCloud, tmp_path: Path, clouds_yaml: Path, name: str
) -> tuple[LoadBalancer, dict[str, str], str, Any]:
    """A real `lbswap run` that dies (exit 137) right before the verify's first probe: its temporary floating
    IP is on the clone. Returns the source, the environment of later lbswap processes, the campaign and that
    floating IP."""
    source = make_source(conn, net, cloud, stack.small_body(net, stack.unique(name)))
    standin = tmp_path / "probes.jsonl"
    env = {**_env(tmp_path, clouds_yaml), "LBSWAP_TEST_PROBE_STANDIN": str(standin)}
    run = subprocess.run(
        [sys.executable, "-m", "lbswap", "--os-cloud", stack.CLOUD, "run", "--lb", source.id, "--yes", *QUICK],
        env={**env, "LBSWAP_TEST_CRASH_AT_PROBE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 137, run.stderr[-3000:]
    assert not standin.exists()  # it died before any probe
    (clone,) = stack.clones_of(conn, source.id)
    (temp,) = temp_fips(conn, source.id)
    assert temp.port_id == clone.vip_port_id
    campaign = next(t.removeprefix(MARKER_CAMPAIGN) for t in temp.tags if t.startswith(MARKER_CAMPAIGN))
    return source, env, campaign, temp


def _lbswap(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "lbswap", "--os-cloud", stack.CLOUD, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_killed_during_verify_then_resume_releases_the_temporary_floating_ip(
    conn: Any, net: stack.Net, cloud: OpenStackCloud, tmp_path: Path, clouds_yaml: Path
) -> None:
    source, env, _campaign, left = _killed_in_verify(conn, net, cloud, tmp_path, clouds_yaml, "kill-verify")
    resumed = _lbswap(env, "-v", "resume", "-f", "json")
    assert resumed.returncode == 0, resumed.stderr[-5000:]
    (campaign,) = json.loads(resumed.stdout)
    (swap,) = campaign["swaps"]
    assert swap["verify"]["outcome"] == "passed", swap["verify"]
    check_done(conn, cloud, source, swap)
    probed = {json.loads(line)["address"] for line in (tmp_path / "probes.jsonl").read_text().splitlines()}
    front = source.floating_ips[0].floating_ip_address
    assert front in probed and len(probed) == 2  # the source's floating IP and the resumed verify's temporary one
    assert conn.network.find_ip(left.id) is None  # the crash's, released
    assert temp_fips(conn, source.id) == []


@pytest.mark.parametrize("command", ["rollback", "recover"])
def test_killed_during_verify_then_rollback_or_recover_releases_it(
    conn: Any, net: stack.Net, cloud: OpenStackCloud, tmp_path: Path, clouds_yaml: Path, command: str
) -> None:
    source, env, campaign, left = _killed_in_verify(conn, net, cloud, tmp_path, clouds_yaml, f"kill-{command}")
    if command == "rollback":
        done = _lbswap(env, "rollback", campaign, "-f", "json")
        assert done.returncode == 0, done.stderr[-5000:]
        rolled = json.loads(done.stdout)  # the campaign
        (swap,) = rolled["swaps"]
        check_rolled_back(conn, cloud, source, swap)
    else:
        done = _lbswap(env, "recover", "--campaign", campaign, "--yes", "-f", "json")
        assert done.returncode == 0, done.stderr[-5000:]
        actions = {(r["action"], r["source_id"]) for r in json.loads(done.stdout)}
        assert any(source.id == sid for _action, sid in actions), actions
        assert stack.clones_of(conn, source.id) == []
        now = cloud.read_graph(source.id)
        assert {f.id: f.port_id for f in now.floating_ips} == {f.id: f.port_id for f in source.floating_ips}
        assert stack.leftovers(conn) == []
    assert conn.network.find_ip(left.id) is None
    assert temp_fips(conn, source.id) == []
    assert not (tmp_path / "probes.jsonl").exists()  # neither probes


@pytest.fixture
def no_floating_ip_room(conn: Any) -> Iterator[Callable[[], None]]:
    """Set the project's floating IP quota in Neutron to what it uses (no room left); restored afterwards."""

    def fill() -> None:
        details = conn.network.get(f"/quotas/{stack.PROJECT}/details.json").json()["quota"]["floatingip"]
        response = conn.network.put(f"/quotas/{stack.PROJECT}", json={"quota": {"floatingip": details["used"]}})
        assert response.status_code == 200, response.text

    yield fill
    response = conn.network.delete(f"/quotas/{stack.PROJECT}")
    assert response.status_code in (200, 204), response.text


def test_floating_ip_quota_without_room_is_a_preflight_finding(
    conn: Any, net: stack.Net, cloud: OpenStackCloud, lbswap: Any, tmp_path: Path, no_floating_ip_room: Any
) -> None:
    source = make_source(conn, net, cloud, stack.small_body(net, stack.unique("fip-quota")))
    no_floating_ip_room()
    planned = lbswap(["plan", "--lb", source.id, "-f", "json"])
    assert planned.returncode == 2, planned.stderr
    (row,) = json.loads(planned.stdout)
    (finding,) = [f for f in row["findings"] if f["code"] == "temp-fip-quota"]
    assert finding["blocking"] and "floating IP quota leaves 0" in finding["message"], finding
    assert row["verify"]["runs"] is True
    skipped = lbswap(["plan", "--lb", source.id, "--no-verify", "-f", "json"])
    assert skipped.returncode == 0, skipped.stderr
    (row,) = json.loads(skipped.stdout)
    assert row["verify"] == {"runs": False, "detail": "skipped: --no-verify", "listeners": {}}
    fips_before = sorted(f.id for f in conn.network.ips())
    refused = lbswap(["run", "--lb", source.id, "--yes", *QUICK])
    assert refused.returncode == 2
    assert "floating IP quota leaves 0" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert stack.clones_of(conn, source.id) == []  # refused before anything started
    assert sorted(f.id for f in conn.network.ips()) == fips_before
    # the quota the plan reads is the one Neutron applies to the temporary floating IP: a run that skipped the
    # plan's check fails at the verify (rolled back, before any client saw the clone)
    backend = StandIn(conn, source)
    try:
        plans = make_plans(backend, [source.id], PlanOptions(verify=False))
        swap = run_campaign(backend, Journal(tmp_path / "j.sqlite"), plans, SwapOptions(drain_timeout=0, watch=0))
    finally:
        backend.close()
    (only,) = swap.swaps
    assert "no floating IP quota left for the temporary probe address" in (only.to_json()["error"] or "")
    assert backend.probes == []
    check_rolled_back(conn, cloud, source, only.to_json())
