"""lbswap's own ``openstack`` backend end to end on the local cloud, with real packets: a ``lbswap run`` process
swaps a SINGLE HTTP load balancer (real Octavia, namespace amphorae) behind a floating IP served by Neutron's L3
agent, while a probe in the external client's namespace opens new connections through the floating IP.

The backend probes from that namespace too (``--backend openstack:lbswap-localcloud?probe-netns=NS``): the verify
through a temporary floating IP and the post-flip settle wait. The member echoes the address it saw (the amphora
that forwarded the connection), so every answer names an amphora, which Octavia's amphora API maps to its load
balancer: the probe shows when new connections moved to the clone, and the backend's ``served_by`` tells the
settle wait the same. Prints the figures it measured."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lbswap.localcloud import probe
from lbswap.localcloud.guests import Guest
from tests.localcloud.conftest import Cloud, create_http_lb, http_get, wait_lb_online, wait_until

pytestmark = [
    pytest.mark.localcloud,
    pytest.mark.filterwarnings("ignore::openstack.warnings._RemovedInSDKWarning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.OpenStackDeprecationWarning"),
]

SRC = Path(__file__).resolve().parents[2] / "src"
PROBE_RATE = 150.0  # new connections per second through the floating IP
MIN_CONNECTIONS = 1000
SWAP_TIMEOUT = 240.0  # seconds for one lbswap process (clone creation on a loaded 2-core machine included)
MEMBER_PORT = 8080


@dataclass(frozen=True)
class Member:
    guest: Guest
    name: str


@pytest.fixture
def echo_member(plug: Callable[[str], Guest]) -> Iterator[Member]:
    """A member namespace whose HTTP server answers ``member NAME peer ADDRESS`` (the address it saw)."""
    guest = plug("lcm")
    name = f"m-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-m", "lbswap.clouds.local.member", "--name", name, "--port", str(MEMBER_PORT)]
    server = subprocess.Popen(["ip", "netns", "exec", guest.ns, *cmd], env=env, stdout=subprocess.DEVNULL)
    try:
        yield Member(guest, name)
    finally:
        server.kill()
        server.wait(timeout=10)


def vrrp_ips(cloud: Cloud, lb_id: str) -> set[str]:
    """The member-side addresses of a load balancer's live amphorae (Octavia's amphora API)."""
    amps = cloud.conn.load_balancer.amphorae(loadbalancer_id=lb_id)
    return {a.vrrp_ip for a in amps if a.status != "DELETED" and a.vrrp_ip}


class Probe:
    """lbswap.localcloud.probe in a namespace, stopped by SIGTERM; times on the monotonic clock."""

    def __init__(self, client: Guest, address: str, out: Path) -> None:
        self.out = out
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        cmd = [sys.executable, "-m", "lbswap.localcloud.probe", address, "--out", str(out)]
        cmd += ["--rate", str(PROBE_RATE), "--duration", str(probe.MAX_DURATION)]
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", client.ns, *cmd], stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self) -> list[probe.Record]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # `ip netns exec` execs the probe: this is its pid
        assert self.proc.wait(timeout=30) == 0
        return probe.load(self.out)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def lbswap_cmd(client: Guest, journal: Path) -> list[str]:
    backend = f"openstack:lbswap-localcloud?probe-netns={client.ns}"
    return [sys.executable, "-m", "lbswap", "--backend", backend, "--journal", str(journal)]


def swaps_of(stdout: str) -> list[dict[str, Any]]:
    doc = json.loads(stdout)
    campaigns = doc if isinstance(doc, list) else [doc]
    return [swap for campaign in campaigns for swap in campaign["swaps"]]


def clone_created(lbapi: Any, source_id: str) -> bool:
    return any(lb.id != source_id and lb.name.startswith("lcs-web") for lb in lbapi.load_balancers())


def run_swap(
    cloud: Cloud, cmd: list[str], env: dict[str, str], source_id: str, *, kill: bool
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """``lbswap run`` to the end, or SIGKILLed once the clone exists and then ``lbswap resume`` to the end."""
    run = [*cmd, "run", "--lb", source_id, "--force", "--strategy", "fip-swap", "--drain-timeout", "5"]
    run += ["--watch", "5", "--yes", "-f", "json"]
    if not kill:
        return subprocess.run(run, env=env, capture_output=True, text=True, timeout=SWAP_TIMEOUT, check=False), {}
    started = time.monotonic()
    with subprocess.Popen(run, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        try:
            wait_until(
                "the clone created",
                lambda: proc.poll() is not None or clone_created(cloud.conn.load_balancer, source_id),
            )
            assert proc.poll() is None, f"lbswap ended ({proc.returncode}) before the clone existed"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
    killed = time.monotonic() - started
    # the campaign's own backend, probe-netns included, from the journal (no --backend given)
    resume = [sys.executable, "-m", "lbswap", "--journal", cmd[cmd.index("--journal") + 1], "resume", "-f", "json"]
    done = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=SWAP_TIMEOUT, check=False)
    return done, {"lbswap killed (SIGKILL) after": f"{killed:.1f} s, once the clone existed"}


@pytest.mark.parametrize("kill", [False, True], ids=["run", "killed-then-resumed"])
def test_lbswap_swaps_a_load_balancer_behind_a_floating_ip_without_failed_connections(
    cloud: Cloud, echo_member: Member, external_client: Guest, tmp_path: Path, kill: bool
) -> None:
    net, lbapi = cloud.conn.network, cloud.conn.load_balancer
    figures: dict[str, str] = {}
    started = time.monotonic()
    source = create_http_lb(cloud, "lcs-web", echo_member.guest, "-s")
    fip = None
    lb_ids = [source.id]
    env = {**os.environ, "PYTHONPATH": str(SRC), "XDG_STATE_HOME": str(tmp_path / "state")}
    try:
        wait_lb_online(cloud, source.id)
        figures["source ACTIVE and ONLINE"] = f"{time.monotonic() - started:.1f} s"
        (source_amp,) = vrrp_ips(cloud, source.id)
        fip = net.create_ip(floating_network_id=cloud.info["external_network_id"], port_id=source.vip_port_id)
        address = fip.floating_ip_address
        source_answer = f"member {echo_member.name} peer {source_amp}"
        wait_until("the source through the floating IP", lambda: http_get(external_client, address) == source_answer)

        runner = Probe(external_client, address, tmp_path / "probe.json")
        try:
            # the offset between the wall clock (lbswap's, in its result) and the probe's monotonic clock
            offset = time.time() - time.monotonic()
            swap_started = time.monotonic()
            cmd = lbswap_cmd(external_client, tmp_path / "j.sqlite")
            run, more = run_swap(cloud, cmd, env, source.id, kill=kill)
            swap_seconds = time.monotonic() - swap_started
            time.sleep(1.0)  # new connections through the floating IP after lbswap ended, too
            records = runner.stop()
        finally:
            runner.kill()
        (tmp_path / "result.json").write_text(run.stdout)
        assert run.returncode == 0, f"lbswap: {run.returncode}\n{run.stderr[-3000:]}\n{run.stdout[-3000:]}"
        (swap,) = swaps_of(run.stdout)
        assert swap["state"] == "done", swap
        clone_id = swap["clone_id"]
        lb_ids.append(clone_id)
        (clone_amp,) = vrrp_ips(cloud, clone_id)
        clone_answer = f"member {echo_member.name} peer {clone_amp}"

        (settle,) = swap["settle"]
        assert settle["outcome"] == "served by the clone", settle  # the backend's served_by, from the namespace
        api_answered = settle["api_answered_at"] - offset
        flip_started = swap["steps"]["flip"]["started"] - offset
        move = probe.analyze(records, clone_answer, api_answered)
        answers = {r.answer for r in records if r.ok}
        assert answers <= {source_answer, clone_answer}, answers - {source_answer, clone_answer}
        figures.update(more)
        what = "lbswap resume (after the kill)" if kill else "lbswap run"
        figures[f"{what}: plan, clone, verify, flip, settle, drain, delete"] = f"{swap_seconds:.1f} s"
        figures["probe"] = f"{move.connections} new connections at {PROBE_RATE:.0f}/s"
        figures["failed connections"] = str(move.failed)
        figures["longest gap between answers"] = f"{move.longest_gap * 1000:.0f} ms"
        figures["flip step started -> API answered"] = f"{api_answered - flip_started:.2f} s"
        if move.switched_at is not None:
            figures["API answered -> clone served (probe)"] = f"{move.switched_at - api_answered:.2f} s"
        figures["API answered -> clone served (lbswap's settle)"] = f"{settle['delay_seconds']} s"
        figures["source's answers after the API answered"] = str(move.source_after_answer)
        assert move.failed == 0, [r for r in records if not r.ok][:5]
        assert move.connections >= MIN_CONNECTIONS, move.connections
        assert move.switched_at is not None, "no new connection was served by the clone's amphora"
        assert move.served_by_target_after >= PROBE_RATE, "too few connections served by the clone after the flip"
        assert move.switched_at > flip_started, "served by the clone before the flip"
        assert swap["verify"] and swap["verify"].get("answering"), swap["verify"]  # probed from the namespace

        # the source is gone, the floating IP on the clone's VIP port, the clone ONLINE from heartbeats
        wait_until("the source deleted", lambda: lbapi.find_load_balancer(source.id) is None, timeout=60)
        clone = cloud.lb(clone_id)
        assert net.get_ip(fip.id).port_id == clone.vip_port_id
        assert clone.provisioning_status == "ACTIVE"
        wait_until("the clone ONLINE", lambda: cloud.lb(clone_id).operating_status == "ONLINE", timeout=30)
        assert http_get(external_client, address) == clone_answer
        status = subprocess.run(
            [*cmd, "status", "-f", "json"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert [s["state"] for s in swaps_of(status.stdout)] == ["done"], status.stdout
        if not kill:
            figures.update(octavia_failover(cloud, clone_id, external_client, address, tmp_path))
    finally:
        if fip is not None:
            net.delete_ip(fip, ignore_missing=True)
        clones = [lb.id for lb in lbapi.load_balancers() if lb.id not in lb_ids and lb.name.startswith("lcs-web")]
        for lb_id in lb_ids + clones:
            lbapi.delete_load_balancer(lb_id, cascade=True, ignore_missing=True)
        for lb_id in lb_ids + clones:
            wait_until("deleted", lambda lb_id=lb_id: lbapi.find_load_balancer(lb_id) is None)
    width = max(len(k) for k in figures)
    print(f"\nlocal cloud, lbswap's fip-swap through the openstack backend ({'killed, resumed' if kill else 'run'}):")
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value}")


def octavia_failover(cloud: Cloud, lb_id: str, client: Guest, address: str, tmp_path: Path) -> dict[str, str]:
    """For comparison: Octavia's own failover of the (SINGLE) load balancer behind the floating IP, the same probe
    opening new connections through it: its figures (measured, not asserted: a SINGLE amphora is replaced)."""
    runner = Probe(client, address, tmp_path / "failover.json")
    try:
        time.sleep(1.0)
        started = time.monotonic()
        cloud.conn.load_balancer.failover_load_balancer(lb_id)
        wait_until("failover started", lambda: cloud.lb(lb_id).provisioning_status != "ACTIVE", interval=0.1)
        wait_until("ACTIVE after failover", lambda: cloud.lb(lb_id).provisioning_status in ("ACTIVE", "ERROR"))
        active = time.monotonic() - started
        assert cloud.lb(lb_id).provisioning_status == "ACTIVE", "failover ended in ERROR (worker log)"
        wait_until("served after failover", lambda: http_get(client, address).startswith("member "), timeout=60)
        time.sleep(1.0)
        records = runner.stop()
    finally:
        runner.kill()
    move = probe.analyze(records, "", started)
    failed = [r for r in records if not r.ok]
    outage = f" (from {failed[0].start - started:.1f} s to {failed[-1].end - started:.1f} s)" if failed else ""
    return {
        "Octavia failover: probe": f"{len(records)} new connections at {PROBE_RATE:.0f}/s",
        "Octavia failover: failed connections": f"{move.failed}{outage}",
        "Octavia failover: longest gap between answers": f"{move.longest_gap:.1f} s",
        "Octavia failover: API -> ACTIVE": f"{active:.1f} s",
    }
