"""Tier 2: the openstack backend and whole swaps against the real Octavia and Neutron API servers that
scripts/openstack-stack.sh starts on 127.0.0.1 (noop amphora, compute and worker network drivers).

Run with scripts/test-openstack.sh. A missing stack fails these tests; it never skips them.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbswap.clone import comparable
from lbswap.clouds.openstack import OpenStackCloud, _public_url
from lbswap.errors import NotFound, PreconditionFailed
from lbswap.journal import Journal
from lbswap.model import LoadBalancer
from lbswap.plan import PlanOptions, make_plans
from lbswap.workflow.runner import run_campaign
from lbswap.workflow.tasks import SwapOptions
from tests.clouds import openstack_stack as stack
from tests.conftest import SRC

pytestmark = [
    pytest.mark.openstack,
    # openstacksdk warns about its own internals (metrics support, its own deprecated parameters)
    pytest.mark.filterwarnings("ignore::openstack.warnings._RemovedInSDKWarning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.OpenStackDeprecationWarning"),
]

PASSWORD = "Tier2-Hunter2-password-9f8e7d"
TOKEN = "gAAAAABtier2tokenSECRET0123456789abcdef"


@pytest.fixture
def clouds_yaml(tmp_path: Path) -> Path:
    """The test cloud's entry, next to a second entry holding a password and a token (never to be shown)."""
    source = yaml.safe_load(Path(os.environ["OS_CLIENT_CONFIG_FILE"]).read_text())
    entry = source["clouds"][stack.CLOUD]
    secret = {
        "auth_type": "password",
        "auth": {"auth_url": "http://127.0.0.1:5000/v3", "username": "admin", "password": PASSWORD, "token": TOKEN},
    }
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": {stack.CLOUD: entry, "prod-secret": secret}}))
    return path


@pytest.fixture
def lbswap(tmp_path: Path, clouds_yaml: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the CLI with --os-cloud, a private XDG_STATE_HOME and the clouds.yaml above."""

    def run(args: list[str], *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        with (tmp_path / "stderr.txt").open("w+") as err:  # a file: readable even when the run times out
            try:
                out = subprocess.run(
                    [sys.executable, "-m", "lbswap", "--os-cloud", stack.CLOUD, *args],
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    env=_env(tmp_path, clouds_yaml),
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                err.seek(0)
                pytest.fail(
                    f"lbswap {' '.join(args)} did not end in {timeout} s; its stderr ends:\n{err.read()[-5000:]}"
                )
            err.seek(0)
            return subprocess.CompletedProcess(out.args, out.returncode, out.stdout, err.read())

    return run


def _env(tmp_path: Path, clouds_yaml: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "OS_CLIENT_CONFIG_FILE": str(clouds_yaml),
    }


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


# --- invariant checks ------------------------------------------------------------------------------------


def check_done(conn: Any, cloud: OpenStackCloud, source: LoadBalancer, swap: dict[str, Any]) -> LoadBalancer:
    """Swapped: the clone's graph equals the source's, every floating IP moved by one compare-and-swap PUT,
    the source retired, nothing left behind."""
    assert swap["state"] == "done", swap
    assert not stack.lb_exists(conn, source.id), "the source was not retired"
    clone = cloud.read_graph(swap["clone_id"])
    assert comparable(clone) == comparable(source)
    assert clone.provisioning_status == "ACTIVE"
    for fip in source.floating_ips:
        now = conn.network.get_ip(fip.id)
        assert now.port_id == clone.vip_port_id
        assert now.fixed_ip_address == clone.vip_address
        assert now.revision_number == fip.revision_number + 1, "moved by more than one PUT"
    assert stack.clones_of(conn, source.id) == [next(lb for lb in stack.clones_of(conn, source.id))]
    assert stack.leftovers(conn) == []
    return clone


def check_rolled_back(conn: Any, cloud: OpenStackCloud, source: LoadBalancer, swap: dict[str, Any]) -> None:
    """Rolled back: the source untouched and reached by its floating IPs, no clone, nothing left behind."""
    assert swap["state"] == "rolled_back", swap
    now = cloud.read_graph(source.id)
    assert now.provisioning_status == "ACTIVE"
    assert comparable(now) == comparable(source)
    assert {f.id: f.port_id for f in now.floating_ips} == {f.id: f.port_id for f in source.floating_ips}
    assert stack.clones_of(conn, source.id) == []
    assert stack.leftovers(conn) == []


def make_source(conn: Any, net: stack.Net, cloud: OpenStackCloud, body: dict[str, Any], *, fip: bool = True):
    lb = stack.create_lb(conn, body)
    if fip:
        stack.add_fip(conn, net, lb["vip_port_id"])
    return cloud.read_graph(lb["id"])


# --- the backend itself ----------------------------------------------------------------------------------


def test_read_graph_maps_the_whole_graph(conn: Any, net: stack.Net, cloud: OpenStackCloud) -> None:
    body = stack.full_body(net, stack.unique("graph"), flavor_id=net.flavor_ha)
    graph = make_source(conn, net, cloud, body)
    assert graph.topology == "ACTIVE_STANDBY"
    assert sorted(a.role for a in graph.amphorae) == ["BACKUP", "MASTER"]
    assert graph.tags == ("team=web", "env=test") or sorted(graph.tags) == sorted(["team=web", "env=test"])
    http = next(li for li in graph.listeners if li.name == "http")
    assert http.allowed_cidrs and sorted(http.allowed_cidrs) == ["10.0.0.0/8", "192.168.0.0/16"]
    assert (http.timeout_client_data, http.timeout_member_connect, http.timeout_tcp_inspect) == (12345, 3000, 10)
    assert sorted(p.name for p in http.l7policies) == ["api", "old"]
    api = next(p for p in http.l7policies if p.name == "api")
    assert graph.pool_by_id(api.redirect_pool_id or "").name == "api"
    assert len(api.rules) == 2
    web = next(p for p in graph.pools if p.name == "web")
    backup = next(m for m in web.members if m.backup)
    assert (backup.weight, backup.monitor_address, backup.monitor_port) == (0, "10.20.0.111", 9000)
    assert web.session_persistence and web.session_persistence["type"] == "HTTP_COOKIE"
    assert sorted(p.healthmonitor.type for p in graph.pools if p.healthmonitor) == ["HTTP", "TCP", "UDP-CONNECT"]
    assert [f.port_id for f in graph.floating_ips] == [graph.vip_port_id]
    flavor = cloud.get_flavor("lbswap-ha")
    assert (flavor.id, flavor.topology) == (net.flavor_ha, "ACTIVE_STANDBY")
    assert cloud.get_provider("amphora").name == "amphora"
    with pytest.raises(NotFound):
        cloud.get_provider("no-such-provider")
    assert cloud.list_images("amphora") == []  # the test stack has no image API
    assert cloud.can_read_secret("https://barbican.invalid/v1/secrets/x") is True  # no key manager
    free = cloud.subnet_free_addresses(net.subnet_id)
    assert free is not None and free > 0
    assert cloud.get_quota(stack.PROJECT).limits["load_balancer"] == -1
    with pytest.raises(NotFound):
        cloud.read_graph("00000000-0000-0000-0000-000000000000")


class CountingCloud:
    """A backend whose HTTP calls are counted by method and path (ids replaced by {id})."""

    UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")

    def __init__(self) -> None:
        self.cloud = OpenStackCloud(stack.CLOUD)
        self.calls: collections.Counter[str] = collections.Counter()
        self.cloud.list_load_balancers(project_id="warm-up")  # endpoint discovery: not part of what is counted
        self.cloud.list_floating_ips(tag="warm-up")
        self.cloud._conn.session.session.hooks["response"].append(self._hook)

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        path = self.UUID.sub("{id}", urllib.parse.urlsplit(response.request.url).path)
        self.calls[f"{response.request.method} {path}"] += 1

    def read(self, lb_id: str) -> tuple[LoadBalancer, collections.Counter[str]]:
        self.calls.clear()
        graph = self.cloud.read_graph(lb_id)
        return graph, collections.Counter(self.calls)


def wait_settled(conn: Any, lb_id: str, seconds: float) -> None:
    """Until the load balancer's last write is ``seconds`` old on the server's clock (its Date header)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = conn.load_balancer.get(f"/lbaas/loadbalancers/{lb_id}")
        lb = response.json()["loadbalancer"]
        changed = datetime.datetime.fromisoformat(lb["updated_at"] or lb["created_at"]).replace(tzinfo=datetime.UTC)
        served = datetime.datetime.strptime(response.headers["Date"], "%a, %d %b %Y %H:%M:%S GMT")
        if (served.replace(tzinfo=datetime.UTC) - changed).total_seconds() > seconds:
            return
        time.sleep(0.5)  # the server's clock, not one a test can inject
    raise AssertionError(f"load balancer {lb_id} did not settle")


def test_read_graph_lists_by_parent_and_reuses_an_unchanged_graph(conn: Any, net: stack.Net) -> None:
    lb = stack.create_lb(conn, stack.full_body(net, stack.unique("reuse")))
    stack.add_fip(conn, net, lb["vip_port_id"])
    counting = CountingCloud()
    counting.cloud.graph_settle = 1.0
    wait_settled(conn, lb["id"], 2.5)
    full, calls = counting.read(lb["id"])
    # three pools (members and a monitor each), two listeners, one with two L7 policies of two and one rules
    assert calls == {
        "GET /v2/lbaas/loadbalancers/{id}": 1,
        "GET /v2/lbaas/listeners": 1,
        "GET /v2/lbaas/pools": 1,
        "GET /v2/lbaas/pools/{id}/members": 3,
        "GET /v2/lbaas/healthmonitors/{id}": 3,
        "GET /v2/lbaas/l7policies": 1,
        "GET /v2/lbaas/l7policies/{id}/rules": 2,
        "GET /v2/octavia/amphorae": 1,
        "GET /v2.0/floatingips": 1,
    }, calls
    again, calls = counting.read(lb["id"])
    assert again == full
    assert calls == {  # the load balancer, its status tree, its floating IPs: the amphorae too are reused
        "GET /v2/lbaas/loadbalancers/{id}": 1,
        "GET /v2/lbaas/loadbalancers/{id}/status": 1,
        "GET /v2.0/floatingips": 1,
    }, calls
    counting.cloud.amphorae_reuse = 0.0  # past their time, the amphorae are read again (and kept again)
    assert counting.read(lb["id"])[1]["GET /v2/octavia/amphorae"] == 1
    counting.cloud.amphorae_reuse = 3600.0
    # member health always comes fresh from the status tree, never from what was kept
    kept = counting.cloud._children[lb["id"]]
    sick = [
        dataclasses.replace(p, members=[dataclasses.replace(m, operating_status="ERROR") for m in p.members])
        for p in kept.pools
    ]
    counting.cloud._children[lb["id"]] = dataclasses.replace(kept, pools=tuple(sick))
    assert counting.read(lb["id"])[0] == full
    # a change through the API is seen at once, and the graph read right after it is not kept
    web = next(p for p in full.pools if p.name == "web")
    member = next(m for m in web.members if m.weight == 5)
    response = conn.load_balancer.put(f"/lbaas/pools/{web.id}/members/{member.id}", json={"member": {"weight": 9}})
    assert response.status_code == 200, response.text
    stack.wait_active(conn, lb["id"])
    changed, calls = counting.read(lb["id"])
    assert next(m for m in changed.pool_by_id(web.id).members if m.id == member.id).weight == 9
    assert sum(calls.values()) == 14, calls
    # without settling time nothing is reused
    counting.cloud.graph_settle = 3600.0
    counting.read(lb["id"])
    assert sum(counting.read(lb["id"])[1].values()) == 14
    counting.cloud.close()


def test_a_small_fip_swap_makes_at_most_40_api_calls(conn: Any, net: stack.Net, tmp_path: Path) -> None:
    """The issue's goal: one fip-swap of a small load balancer, plan included (endpoint discovery apart), in at most
    40 calls to the real APIs (39 today). The source is settled, as a fleet's are; the waits read at a pace that
    makes each read twice here whatever this machine's load (the status watcher at once and 15 s later, the
    delete's wait 5 s after the delete), so that the count is the swap's reads, not the noop worker's speed
    (bench/bench_openstack_swap.py measures the same at the default pace, with the watcher's lists apart)."""
    lb = stack.create_lb(conn, stack.small_body(net, stack.unique("calls")))
    stack.add_fip(conn, net, lb["vip_port_id"])
    counting = CountingCloud()
    counting.cloud.graph_settle = 1.0
    wait_settled(conn, lb["id"], 2.5)
    counting.calls.clear()
    plans = make_plans(counting.cloud, [lb["id"]], PlanOptions())
    options = SwapOptions(drain_timeout=0, verify=False, watch=0, status_interval=15.0, poll_initial=5.0)
    result = run_campaign(counting.cloud, Journal(tmp_path / "journal.sqlite"), plans, options)
    assert result.swaps[0].state == "done", result.swaps[0]
    assert sum(counting.calls.values()) <= 40, sorted(counting.calls.items(), key=lambda kv: -kv[1])
    assert counting.calls["GET /v2/lbaas/loadbalancers/{id}/status"] >= 1, "nothing reused: the count means little"
    # the providers are listed once per process, not once per load balancer planned
    counting.calls.clear()
    assert counting.cloud.get_provider("amphora").name == "amphora"
    assert not counting.calls, counting.calls
    counting.cloud.close()


def test_amphora_age_and_certificate_expiry(conn: Any, net: stack.Net, cloud: OpenStackCloud) -> None:
    """Octavia's amphora API reports created_at and cert_expiration (the noop drivers still issue a
    certificate from the stack's CA): both are mapped, as ISO 8601 with their UTC offset."""
    before = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    lb = stack.create_lb(conn, stack.small_body(net, stack.unique("amp"), flavor_id=net.flavor_ha))
    graph = cloud.read_graph(lb["id"])
    assert sorted(a.role for a in graph.amphorae) == ["BACKUP", "MASTER"]
    raw = {
        a["id"]: a for a in conn.load_balancer.get(f"/octavia/amphorae?loadbalancer_id={lb['id']}").json()["amphorae"]
    }
    for amphora in [*graph.amphorae, *cloud.list_amphorae(lb["id"])]:
        assert amphora.created_at is not None and amphora.cert_expiration is not None, amphora
        created = datetime.datetime.fromisoformat(amphora.created_at)
        expires = datetime.datetime.fromisoformat(amphora.cert_expiration)
        assert created.utcoffset() == expires.utcoffset() == datetime.timedelta(0)
        assert created.replace(tzinfo=None) == datetime.datetime.fromisoformat(raw[amphora.id]["created_at"])
        assert expires.replace(tzinfo=None) == datetime.datetime.fromisoformat(raw[amphora.id]["cert_expiration"])
        assert before < created < expires


def test_identity_names_the_cloud_never_a_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Auth URL (else the Octavia endpoint), project and region; no password, token or secret."""
    source = yaml.safe_load(Path(os.environ["OS_CLIENT_CONFIG_FILE"]).read_text())
    password = {
        "auth_type": "password",
        "region_name": "RegionTwo",
        "auth": {
            "auth_url": "http://127.0.0.1:5000/v3/",
            "username": "admin",
            "password": PASSWORD,
            "project_name": "web",
            "project_domain_name": "Default",
        },
    }
    by_id = {
        "auth_type": "v3applicationcredential",
        "auth": {
            "auth_url": "https://keystone.example:5000/v3",
            "application_credential_id": "0123abcd",
            "application_credential_secret": TOKEN,
            "project_id": "9f8e7d6c",
        },
    }
    path = tmp_path / "clouds.yaml"
    clouds = {stack.CLOUD: source["clouds"][stack.CLOUD], "prod-secret": password, "prod-app": by_id}
    path.write_text(yaml.safe_dump({"clouds": clouds}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    test_cloud = OpenStackCloud(stack.CLOUD)
    assert test_cloud.identity() == "openstack:http://127.0.0.1:9876;project=;region="  # no auth URL: Octavia's
    app = OpenStackCloud("prod-app")
    # the version suffix is not part of the identity: the SDK adds it to an endpoint once it has discovered it
    assert app.identity() == "openstack:https://keystone.example:5000;project=9f8e7d6c;region="
    assert TOKEN not in app.identity() and "0123abcd" not in app.identity()
    secret = OpenStackCloud("prod-secret")
    assert secret.identity() == "openstack:http://127.0.0.1:5000;project=web@Default;region=RegionTwo"
    assert PASSWORD not in secret.identity() and TOKEN not in secret.identity()
    for cloud in (test_cloud, app, secret):
        cloud.close()
    assert _public_url("HTTPS://admin:s3cret@Keystone.Example:5000/v3/?token=x#f") == "https://keystone.example:5000/v3"
    assert _public_url("http://[fd00::1]:5000/identity") == "http://[fd00::1]:5000/identity"


def test_move_floating_ip_is_a_compare_and_swap(conn: Any, net: stack.Net, cloud: OpenStackCloud) -> None:
    port_a = conn.network.create_port(network_id=net.network_id, name=stack.unique("cas-a"))
    port_b = conn.network.create_port(network_id=net.network_id, name=stack.unique("cas-b"))
    fip = cloud.get_floating_ip(stack.add_fip(conn, net, port_a.id).id)
    moved = cloud.move_floating_ip(fip.id, port_id=port_b.id, fixed_ip_address=None, if_revision=fip.revision_number)
    assert moved.port_id == port_b.id and moved.revision_number > fip.revision_number
    with pytest.raises(PreconditionFailed) as stale:
        cloud.move_floating_ip(fip.id, port_id=port_a.id, fixed_ip_address=None, if_revision=fip.revision_number)
    assert stale.value.status_code == 412
    assert cloud.get_floating_ip(fip.id).port_id == port_b.id  # the stale PUT changed nothing
    cloud.delete_floating_ip(fip.id)
    cloud.delete_floating_ip(fip.id)  # idempotent
    for port in (port_a, port_b):
        conn.network.delete_port(port)


# --- whole swaps through the CLI --------------------------------------------------------------------------


def test_swap_two_load_balancers_and_never_show_a_secret(
    conn: Any, net: stack.Net, cloud: OpenStackCloud, lbswap: Any, tmp_path: Path
) -> None:
    single = make_source(conn, net, cloud, stack.full_body(net, stack.unique("web")))
    pair = make_source(conn, net, cloud, stack.full_body(net, stack.unique("ha"), flavor_id=net.flavor_ha))
    result = lbswap(["-v", "run", "--lb", single.id, "--lb", pair.id, "--yes", *NO_DRAIN])
    campaign = _json(result)
    assert result.returncode == 0, result.stderr[-3000:]
    assert campaign["backend"] == f"openstack:{stack.CLOUD}"
    swaps = {s["id"]: s for s in campaign["swaps"]}
    for source in (single, pair):
        clone = check_done(conn, cloud, source, swaps[source.id])
        assert len(swaps[source.id]["flips"]) == len(source.floating_ips)
    assert clone.topology == "ACTIVE_STANDBY"
    status = lbswap(["status", campaign["campaign_id"], "-f", "json"])
    assert status.returncode == 0, status.stderr
    seen = result.stdout + result.stderr + status.stdout + status.stderr
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            seen += path.read_bytes().decode("utf-8", "replace")
    assert "openstack:" in seen  # the journal and the reports were read
    assert PASSWORD not in seen
    assert TOKEN not in seen


def test_concurrent_floating_ip_change_stops_and_rolls_back(
    conn: Any, net: stack.Net, cloud: OpenStackCloud, tmp_path: Path
) -> None:
    """Someone moves the floating IP between lbswap's read and its PUT: the PUT gets 412, lbswap re-reads,
    sees it elsewhere, stops, rolls back, and leaves that floating IP where the other party put it."""
    source = make_source(conn, net, cloud, stack.small_body(net, stack.unique("hijack")))
    elsewhere = conn.network.create_port(network_id=net.network_id, name=stack.unique("elsewhere"))

    class SomeoneElseMovesIt:
        def __init__(self, inner: OpenStackCloud) -> None:
            self.inner = inner
            self.moved = False

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def move_floating_ip(self, fip_id: str, **kwargs: Any) -> Any:
            if not self.moved:
                self.moved = True
                conn.network.update_ip(fip_id, port_id=elsewhere.id)
            return self.inner.move_floating_ip(fip_id, **kwargs)

    backend = SomeoneElseMovesIt(cloud)
    journal = Journal(tmp_path / "journal.sqlite")
    plans = make_plans(backend, [source.id], PlanOptions())  # type: ignore[arg-type]
    options = SwapOptions(drain_timeout=0, verify=False, watch=0)
    result = run_campaign(backend, journal, plans, options)  # type: ignore[arg-type]
    swap = result.swaps[0].to_json()
    assert backend.moved
    assert swap["state"] == "rolled_back", swap
    assert "someone else" in (swap["error"] or "")
    fip = conn.network.get_ip(source.floating_ips[0].id)
    assert fip.port_id == elsewhere.id, "lbswap overwrote someone else's move"
    assert stack.clones_of(conn, source.id) == []
    assert cloud.read_graph(source.id).provisioning_status == "ACTIVE"
    conn.network.update_ip(fip, port_id=source.vip_port_id)  # give it back, then nothing may be left
    check_rolled_back(conn, cloud, source, swap)
    conn.network.delete_port(elsewhere)


# no verify or watch on the tier 2 stack: their probes would send packets to its floating IP addresses, which
# are not on this host (the noop drivers serve nothing there); tier 3 proves them with real packets
NO_PROBES = ("--no-verify", "--watch", "0")
NO_DRAIN = ("--drain-timeout", "0", *NO_PROBES, "-f", "json")
KILL_POINTS = {
    "clone-created": lambda conn, source: bool(stack.clones_of(conn, source.id)),
    "clone-active": lambda conn, source: any(
        c.provisioning_status == "ACTIVE" for c in stack.clones_of(conn, source.id)
    ),
    "flipped": lambda conn, source: conn.network.get_ip(source.floating_ips[0].id).port_id != source.vip_port_id,
    "retiring": lambda conn, source: (
        not stack.lb_exists(conn, source.id)
        or conn.load_balancer.get_load_balancer(source.id).provisioning_status == "PENDING_DELETE"
    ),
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_sigkill_then_resume(
    conn: Any, net: stack.Net, cloud: OpenStackCloud, lbswap: Any, tmp_path: Path, clouds_yaml: Path, point: str
) -> None:
    source = make_source(conn, net, cloud, stack.small_body(net, stack.unique(f"kill-{point}")))
    process = subprocess.Popen(
        [sys.executable, "-m", "lbswap", "--os-cloud", stack.CLOUD, "run", "--lb", source.id, "--yes", *NO_DRAIN],
        env=_env(tmp_path, clouds_yaml),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not KILL_POINTS[point](conn, source):
            assert process.poll() is None, f"lbswap ended before {point}"
            assert time.monotonic() < deadline, f"never reached {point}"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    resumed = lbswap(["-v", "resume", "-f", "json"], timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-5000:]
    (campaign,) = json.loads(resumed.stdout)
    (swap,) = campaign["swaps"]
    if swap["state"] == "done":
        check_done(conn, cloud, source, swap)
    else:
        check_rolled_back(conn, cloud, source, swap)


def test_failover_strategy(conn: Any, net: stack.Net, cloud: OpenStackCloud, lbswap: Any) -> None:
    for flavor in (net.flavor_ha, None):
        source = make_source(conn, net, cloud, stack.small_body(net, stack.unique("fo"), flavor_id=flavor), fip=False)
        before = {a.id for a in source.amphorae}
        args = ["run", "--lb", source.id, "--strategy", "failover", "--allow-downtime", "--yes", *NO_DRAIN]
        result = lbswap(args)
        (swap,) = _json(result)["swaps"]
        assert swap["state"] == "done", result.stderr
        after = cloud.read_graph(source.id)
        assert after.provisioning_status == "ACTIVE"
        assert comparable(after) == comparable(source)
        assert len(after.amphorae) == len(before) and not before & {a.id for a in after.amphorae}
        assert stack.leftovers(conn) == []


def test_recreate_strategy(conn: Any, net: stack.Net, cloud: OpenStackCloud, lbswap: Any) -> None:
    source = make_source(conn, net, cloud, stack.full_body(net, stack.unique("re")), fip=False)
    args = ["run", "--lb", source.id, "--strategy", "recreate", "--allow-downtime", "--yes", *NO_DRAIN]
    result = lbswap(args)
    (swap,) = _json(result)["swaps"]
    assert swap["state"] == "done", result.stderr
    assert not stack.lb_exists(conn, source.id)
    (again,) = [lb for lb in cloud.list_load_balancers() if lb.name == source.name]
    graph = cloud.read_graph(again.id)
    assert graph.vip_address == source.vip_address
    assert comparable(graph) == comparable(source)
    assert stack.leftovers(conn) == []


def test_inventory_shows_amphorae_and_filters_by_provider(conn: Any, net: stack.Net, lbswap: Any) -> None:
    tag = stack.unique("inv")
    body = stack.small_body(net, stack.unique("inv"), flavor_id=net.flavor_ha)
    body["tags"] = [tag]
    lb = stack.create_lb(conn, body)
    (row,) = _json(lbswap(["inventory", "--tag", tag, "-f", "json"]))
    assert (row["id"], row["topology"], row["provider"]) == (lb["id"], "ACTIVE_STANDBY", "amphora")
    assert sorted(a["role"] for a in row["amphorae"]) == ["BACKUP", "MASTER"]
    assert row["stale_image"] is None  # no image API in the test stack: unknown, not "no"
    assert [r["id"] for r in _json(lbswap(["inventory", "--tag", tag, "--provider", "amphora", "-f", "json"]))] == [
        lb["id"]
    ]
    assert _json(lbswap(["inventory", "--tag", tag, "--provider", "ovn", "-f", "json"])) == []


def test_cascade_delete_is_idempotent_and_cleans_the_vip_port(conn: Any, net: stack.Net, cloud: OpenStackCloud) -> None:
    lb = stack.create_lb(conn, stack.small_body(net, stack.unique("del")))
    other = stack.create_lb(conn, stack.small_body(net, stack.unique("keep")))
    cloud.delete_load_balancer(lb["id"], cascade=True)
    cloud.delete_load_balancer(lb["id"], cascade=True)  # PENDING_DELETE or gone: quietly done
    deadline = time.monotonic() + 60
    while True:
        try:
            cloud.get_load_balancer(lb["id"])
        except NotFound:
            break
        assert time.monotonic() < deadline, "the load balancer was not deleted"
        time.sleep(0.2)
    assert conn.network.find_port(f"octavia-lb-{lb['id']}") is None
    assert conn.network.find_port(f"octavia-lb-{other['id']}") is not None  # only that load balancer's port
    cloud.delete_load_balancer(lb["id"], cascade=True)  # missing: not an error
