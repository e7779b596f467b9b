"""lbswap's own ``openstack`` backend end to end on the local cloud, with real packets: ``lbswap run`` processes
swap a SINGLE HTTP load balancer (real Octavia, namespace amphorae) behind a floating IP served by Neutron's L3
agent, while a probe in the external client's namespace opens new connections through the floating IP at 150/s.

The backend probes from that namespace too (``--backend openstack:lbswap-localcloud?probe-netns=NS``): the verify
through a temporary floating IP and the post-flip settle wait. The member echoes the address it saw (the amphora
that forwarded the connection), so every answer names an amphora, which Octavia's amphora API maps to its load
balancer: the probe shows when new connections moved to the clone, and the backend's ``served_by`` tells the
settle wait the same.

One chain on one floating IP (one source to create, not three): a swap by ``lbswap run``; a second swap of the
clone whose ``lbswap run`` is SIGKILLed once its clone exists, finished by ``lbswap resume`` (the campaign's own
backend spec from the journal, probe-netns included); then Octavia's own failover of the last clone under the same
probe, measured beside them. Each swap: 0 failed new connections, new connections served by the clone's amphora
after the flip (not before it), the source deleted, the floating IP on the clone's VIP port, ONLINE from
heartbeats before and after, the journal says done. Prints the figures it measured.

The first swap also holds long-lived streams through the floating IP, opened once the clone is ready (before the
flip), with a drain deadline longer than them: none is cut (conntrack keeps them on the source's amphora across
the flip), the drain was still waiting for them when it started, and it ended because Octavia's statistics of the
source (the amphora agent's heartbeats through the health manager: ``GET .../stats`` active_connections) reached 0,
as the swap's result records the drain (``drained``, 0 open), not at its deadline. The test reads the same statistics
itself every 0.5 s and prints how late they followed the streams' end.

Beside the chain, an ACTIVE_STANDBY load balancer (an Octavia flavor; two amphorae, keepalived's VRRP between
them, the VIP on the MASTER) with a TCP listener, swapped by ``lbswap run`` behind a floating IP under the same
probe: the same checks, the clone ACTIVE_STANDBY too."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openstack
import pytest

from lbswap.localcloud import probe
from lbswap.localcloud.guests import Guest
from tests.localcloud.conftest import PROJECT, Cloud, create_http_lb, http_get, wait_lb_online, wait_until

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
STREAMS = 5  # long-lived streams through the floating IP, opened before the flip of the first swap
STREAM_SECONDS = 25.0  # each one's length: past the flip, the settle and the watch, into the drain
DRAIN_TIMEOUT = 120.0  # the first swap's drain deadline: longer than the streams
STATS_INTERVAL = 3.0  # the first swap's statistics reads (--stats-interval): this cloud's heartbeat is 2 s
STATS_POLL = 0.5  # how often the test reads the source's statistics itself (Octavia's lag measured)


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
        assert self.proc.poll() is None, f"the probe ended by itself (after {probe.MAX_DURATION:.0f} s?) too early"
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


def clone_created(lbapi: Any, known: set[str]) -> bool:
    return any(lb.id not in known for lb in lbapi.load_balancers())


@dataclass(frozen=True)
class Stream:
    started: float  # time.monotonic()
    ended: float
    returncode: int  # curl's: 18 when the stream was cut (fewer bytes than its Content-Length)
    ticks: int
    peers: frozenset[str]  # the addresses the member saw: the amphora that forwarded the stream

    @property
    def whole(self) -> bool:
        return self.returncode == 0 and self.ticks == int(STREAM_SECONDS / 0.2)


class Streams:
    """Long-lived streams through the floating IP: ``curl`` in the client namespace, each a ``GET /stream`` that
    the member answers with a line every 0.2 s for STREAM_SECONDS (its Content-Length announced up front)."""

    def __init__(self, client: Guest, address: str, count: int, out: Path) -> None:
        out.mkdir()
        self.streams: list[Stream] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._one, args=(client, address, out / f"s{i}")) for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _one(self, client: Guest, address: str, out: Path) -> None:
        url = f"http://{address}/stream?seconds={STREAM_SECONDS:g}"
        cmd = ["ip", "netns", "exec", client.ns, "curl", "-s", "-m", str(STREAM_SECONDS * 3), "-o", str(out), url]
        started = time.monotonic()
        rc = subprocess.run(cmd, capture_output=True, check=False, timeout=STREAM_SECONDS * 4).returncode
        ended = time.monotonic()
        lines = out.read_text().splitlines() if out.exists() else []
        peers = frozenset(line.rsplit(" ", 1)[-1] for line in lines)
        with self._lock:
            self.streams.append(Stream(started, ended, rc, len(lines), peers))

    def wait(self) -> list[Stream]:
        for thread in self._threads:
            thread.join(timeout=STREAM_SECONDS * 5)
        return sorted(self.streams, key=lambda s: s.started)


class StatsWatch:
    """The source's ``GET .../stats`` active_connections read every STATS_POLL s by the test itself (Octavia's: the
    amphora agent's heartbeats through the health manager), with a connection of its own, until stopped or the
    load balancer is gone."""

    def __init__(self, lb_id: str) -> None:
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(lb_id,))
        self._thread.start()

    def _run(self, lb_id: str) -> None:
        lbapi = openstack.connect(cloud="lbswap-localcloud").load_balancer
        while not self._stop.is_set():
            try:
                stats = lbapi.get_load_balancer_statistics(lb_id)
            except openstack.exceptions.NotFoundException:
                return
            self.samples.append((time.monotonic(), int(stats.active_connections)))
            self._stop.wait(STATS_POLL)

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join(timeout=30)
        return self.samples


def clone_ready(journal: Path) -> bool:
    """Whether the swap's wait for its clone ended, as the journal records it (the step's end is saved at once)."""
    try:
        with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=1) as db:
            rows = db.execute("SELECT result FROM lbswap_swaps").fetchall()
    except sqlite3.OperationalError:  # not created yet, or busy
        return False
    return any((json.loads(r[0]).get("steps", {}).get("wait-ready") or {}).get("ended") for r in rows)


def run_with_streams(
    cmd: list[str], env: dict[str, str], source_id: str, client: Guest, address: str, tmp: Path
) -> tuple[subprocess.CompletedProcess[str], list[Stream], list[tuple[float, int]]]:
    """``lbswap run`` with a drain deadline longer than the streams; STREAMS long-lived streams opened when its
    wait for the clone ended (its verify starts, the flip is seconds away), the source's statistics read all along."""
    run = [*cmd, "run", "--lb", source_id, "--force", "--strategy", "fip-swap"]
    run += ["--drain-timeout", f"{DRAIN_TIMEOUT:g}", "--stats-interval", f"{STATS_INTERVAL:g}"]
    run += ["--watch", "3", "--yes", "-f", "json"]
    stats = StatsWatch(source_id)
    journal = Path(cmd[cmd.index("--journal") + 1])
    out = tmp / "stdout.json"
    streams = None
    with out.open("w") as sink, subprocess.Popen(run, env=env, stdout=sink, stderr=subprocess.PIPE, text=True) as proc:
        try:
            wait_until("the clone ready", lambda: proc.poll() is not None or clone_ready(journal), timeout=SWAP_TIMEOUT)
            if proc.poll() is None:
                streams = Streams(client, address, STREAMS, tmp / "streams")
            _, stderr = proc.communicate(timeout=SWAP_TIMEOUT)
        finally:
            proc.kill()
            samples = stats.stop()
    done = subprocess.CompletedProcess(run, proc.returncode, out.read_text(), stderr)
    return done, streams.wait() if streams else [], samples


def run_swap(
    cloud: Cloud, cmd: list[str], env: dict[str, str], source_id: str, known: set[str], *, kill: bool
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """``lbswap run`` to the end, or SIGKILLed once the clone exists and then ``lbswap resume`` to the end."""
    run = [*cmd, "run", "--lb", source_id, "--force", "--strategy", "fip-swap", "--drain-timeout", "5"]
    run += ["--watch", "3", "--yes", "-f", "json"]
    if not kill:
        return subprocess.run(run, env=env, capture_output=True, text=True, timeout=SWAP_TIMEOUT, check=False), {}
    started = time.monotonic()
    with subprocess.Popen(run, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        try:
            lbapi = cloud.conn.load_balancer
            wait_until("the clone created", lambda: proc.poll() is not None or clone_created(lbapi, known))
            assert proc.poll() is None, f"lbswap ended ({proc.returncode}) before the clone existed"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
    killed = time.monotonic() - started
    # the campaign's own backend, probe-netns included, from the journal (no --backend given)
    resume = [sys.executable, "-m", "lbswap", "--journal", cmd[cmd.index("--journal") + 1], "resume", "-f", "json"]
    done = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=SWAP_TIMEOUT, check=False)
    return done, {"lbswap killed (SIGKILL) after": f"{killed:.1f} s, once the clone existed"}


@dataclass
class Stage:
    """One swap of the chain: the load balancer behind the floating IP, swapped to a clone."""

    cloud: Cloud
    member: Member
    client: Guest
    address: str
    fip_id: str
    tmp: Path
    known: set[str]  # every load balancer this test made (the cleanup's list)

    def swap(self, source_id: str, *, kill: bool, streams: bool = False) -> tuple[str, dict[str, str]]:
        """Swap ``source_id`` with a real lbswap process under the probe; the checks of the module doc. With
        ``streams``, long-lived streams opened before the flip too (``check_drain``). Returns the clone's id and
        the figures."""
        net, lbapi, cloud = self.cloud.conn.network, self.cloud.conn.load_balancer, self.cloud
        tmp = self.tmp / ("resumed" if kill else "run")
        tmp.mkdir()
        env = {**os.environ, "PYTHONPATH": str(SRC), "XDG_STATE_HOME": str(tmp / "state")}
        figures: dict[str, str] = {}
        assert cloud.lb(source_id).operating_status == "ONLINE"  # from real heartbeats
        # the answer of the amphora that serves (an ACTIVE_STANDBY load balancer's: its MASTER's)
        source_answers = {f"member {self.member.name} peer {ip}" for ip in vrrp_ips(cloud, source_id)}
        source_answer = wait_until(
            "the source through the floating IP",
            lambda: (answer := http_get(self.client, self.address)) in source_answers and answer,
        )
        source_amp = source_answer.rsplit(" ", 1)[-1]
        cmd = lbswap_cmd(self.client, tmp / "j.sqlite")
        runner = Probe(self.client, self.address, tmp / "probe.json")
        try:
            # the offset between the wall clock (lbswap's, in its result) and the probe's monotonic clock
            offset = time.time() - time.monotonic()
            started = time.monotonic()
            held: list[Stream] = []
            samples: list[tuple[float, int]] = []
            if streams:
                run, held, samples = run_with_streams(cmd, env, source_id, self.client, self.address, tmp)
            else:
                run, figures = run_swap(cloud, cmd, env, source_id, self.known | {source_id}, kill=kill)
            swap_seconds = time.monotonic() - started
            time.sleep(1.0)  # new connections through the floating IP after lbswap ended, too
            records = runner.stop()
        finally:
            runner.kill()
            self.known.update(lb.id for lb in lbapi.load_balancers())
        (tmp / "result.json").write_text(run.stdout)
        assert run.returncode == 0, f"lbswap: {run.returncode}\n{run.stderr[-3000:]}\n{run.stdout[-3000:]}"
        (swap,) = swaps_of(run.stdout)
        assert swap["state"] == "done", swap
        clone_id = swap["clone_id"]
        clone_answers = {f"member {self.member.name} peer {ip}" for ip in vrrp_ips(cloud, clone_id)}
        clone_answer = http_get(self.client, self.address)
        assert clone_answer in clone_answers, (clone_answer, clone_answers)

        (settle,) = swap["settle"]
        assert settle["outcome"] == "served by the clone", settle  # the backend's served_by, from the namespace
        api_answered = settle["api_answered_at"] - offset
        flip_started = swap["steps"]["flip"]["started"] - offset
        move = probe.analyze(records, clone_answer, api_answered)
        answers = {r.answer for r in records if r.ok}
        assert answers <= {source_answer, clone_answer}, answers - {source_answer, clone_answer}
        what = "lbswap resume (after the kill)" if kill else "lbswap run"
        figures[f"{what}: plan, clone, verify, flip, settle, drain, delete"] = f"{swap_seconds:.1f} s"
        steps = swap["steps"]
        figures["of which clone ready, verify, retire"] = (
            f"{steps['wait-ready']['seconds']:.1f} s, {steps['verify']['seconds']:.1f} s, "
            f"{steps['retire']['seconds']:.1f} s"
        )
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
        if streams:
            figures.update(check_drain(swap, held, samples, source_amp, offset))

        # the source is gone, the floating IP on the clone's VIP port, the clone ONLINE from heartbeats
        wait_until("the source deleted", lambda: lbapi.find_load_balancer(source_id) is None, timeout=60)
        clone = cloud.lb(clone_id)
        assert net.get_ip(self.fip_id).port_id == clone.vip_port_id
        assert clone.provisioning_status == "ACTIVE"
        wait_until("the clone ONLINE", lambda: cloud.lb(clone_id).operating_status == "ONLINE", timeout=30)
        assert http_get(self.client, self.address) == clone_answer
        status = subprocess.run(
            [*cmd, "status", "-f", "json"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert [s["state"] for s in swaps_of(status.stdout)] == ["done"], status.stdout
        return clone_id, figures


def test_lbswap_swaps_behind_a_floating_ip_without_failed_connections_also_when_killed_and_resumed(
    cloud: Cloud, echo_member: Member, external_client: Guest, tmp_path: Path
) -> None:
    """A chain on one floating IP: the source swapped by `lbswap run`; its clone swapped again by a `lbswap run`
    SIGKILLed once the next clone exists, then `lbswap resume`; then, for comparison, Octavia's own failover of
    the last clone under the same probe."""
    net = cloud.conn.network
    started = time.monotonic()
    source = create_http_lb(cloud, "lcs-web", echo_member.guest, "-s")
    known = {source.id}
    fip = None
    tables: list[tuple[str, dict[str, str]]] = []
    try:
        wait_lb_online(cloud, source.id)
        setup = {"source ACTIVE and ONLINE": f"{time.monotonic() - started:.1f} s"}
        tables.append(("the source", setup))
        fip = net.create_ip(floating_network_id=cloud.info["external_network_id"], port_id=source.vip_port_id)
        stage = Stage(cloud, echo_member, external_client, fip.floating_ip_address, fip.id, tmp_path, known)
        clone_id, figures = stage.swap(source.id, kill=False, streams=True)
        tables.append(("lbswap's fip-swap through the openstack backend (run, long-lived streams)", figures))
        last_id, figures = stage.swap(clone_id, kill=True)
        tables.append(("the clone swapped again, lbswap killed then resumed", figures))
        tables.append(("Octavia's own failover of the last clone, same probe", octavia_failover(cloud, last_id, stage)))
    finally:
        clean_up(cloud, fip, known, "lcs-web")
        for title, figures in tables:
            print_figures(title, figures)


def clean_up(cloud: Cloud, fip: Any, known: set[str], prefix: str) -> None:
    """Release the test's floating IP, delete its load balancers (those in ``known`` and any named ``prefix*``: a
    clone made by a run the test lost track of) and wait until they are gone."""
    net, lbapi = cloud.conn.network, cloud.conn.load_balancer
    if fip is not None:
        net.delete_ip(fip, ignore_missing=True)
    known.update(lb.id for lb in lbapi.load_balancers() if lb.name.startswith(prefix))
    for lb_id in known:
        lbapi.delete_load_balancer(lb_id, cascade=True, ignore_missing=True)
    for lb_id in known:
        wait_until("deleted", lambda lb_id=lb_id: lbapi.find_load_balancer(lb_id) is None)


def print_figures(title: str, figures: dict[str, str]) -> None:
    width = max((len(k) for k in figures), default=0)
    print(f"\nlocal cloud, {title}:")
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value}")


def octavia_failover(cloud: Cloud, lb_id: str, stage: Stage) -> dict[str, str]:
    """For comparison: Octavia's own failover of the (SINGLE) load balancer behind the floating IP, the same probe
    opening new connections through it: its figures (measured, not asserted: a SINGLE amphora is replaced)."""
    client, address = stage.client, stage.address
    runner = Probe(client, address, stage.tmp / "failover.json")
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
        "probe": f"{len(records)} new connections at {PROBE_RATE:.0f}/s",
        "failed connections": f"{move.failed}{outage}",
        "longest gap between answers": f"{move.longest_gap:.1f} s",
        "failover API -> ACTIVE": f"{active:.1f} s",
    }


def check_drain(
    swap: dict[str, Any],
    streams: list[Stream],
    samples: list[tuple[float, int]],
    source_amp: str,
    offset: float,
) -> dict[str, str]:
    """The long-lived streams of a swap: opened before the flip, served by the source to their end (0 cut), still
    open when the drain started; the drain ended because Octavia's statistics of the source reached 0 (the
    swap result's record of it), not at its deadline. Returns the figures, Octavia's lag among them."""
    assert len(streams) == STREAMS, streams
    steps = swap["steps"]
    flip_started = steps["flip"]["started"] - offset
    drain_started, drain_ended = steps["drain"]["started"] - offset, steps["drain"]["ended"] - offset
    cut = [s for s in streams if not s.whole]
    opened, ended = max(s.started for s in streams), max(s.ended for s in streams)
    first_end = min(s.ended for s in streams)
    # 0 cut: the streams stayed on the source's amphora (conntrack) across the flip, the drain and the settle
    assert not cut, cut
    assert all(s.peers == {source_amp} for s in streams), [s.peers for s in streams]
    assert opened < flip_started, "a stream opened after the flip started"
    assert first_end > drain_started, "the streams ended before the drain started: it waited for nothing"
    # the drain ended because the source's active connections were 0 three samples in a row, not at the deadline
    drained = swap["drain"]
    assert (drained["drained"], drained["open"], drained["deadline_seconds"]) == (True, 0, DRAIN_TIMEOUT), drained
    assert drain_ended - drain_started < DRAIN_TIMEOUT - 10.0, steps["drain"]
    assert drain_ended > ended, "the drain ended before the streams did"
    # Octavia saw the streams on the source after the flip, then 0 once they ended: how late
    during = [n for t, n in samples if flip_started + 5.0 < t < first_end]
    assert during and max(during) >= STREAMS, samples
    zero_at = next((t for t, n in samples if t > ended and n == 0), None)
    assert zero_at is not None, samples
    return {
        "long-lived streams": f"{len(streams)} of {STREAM_SECONDS:g} s, opened {flip_started - opened:.1f} s "
        f"before the flip, {len(cut)} cut",
        "source's stats active_connections while the streams ran": f"{min(during)}..{max(during)}",
        "streams ended -> stats 0 (test polling every 0.5 s)": f"{zero_at - ended:.1f} s",
        "drain started -> streams ended": f"{ended - drain_started:.1f} s",
        f"streams ended -> drain ended (3 zero samples, {STATS_INTERVAL:g} s apart)": f"{drain_ended - ended:.1f} s",
        "drain (result: drained, 0 open)": f"{drained['seconds']:.1f} s of {DRAIN_TIMEOUT:g} s allowed",
    }


def roles_of(cloud: Cloud, lb_id: str) -> list[str]:
    return sorted(a.role for a in cloud.conn.load_balancer.amphorae(loadbalancer_id=lb_id) if a.status != "DELETED")


@pytest.fixture
def active_standby(cloud: Cloud) -> Iterator[str]:
    """An Octavia flavor whose load balancers are ACTIVE_STANDBY (two amphorae, keepalived's VRRP between them)."""
    lbapi = cloud.conn.load_balancer
    data = json.dumps({"loadbalancer_topology": "ACTIVE_STANDBY"})
    profile = lbapi.create_flavor_profile(name="lc-active-standby", provider_name="amphora", flavor_data=data)
    flavor = lbapi.create_flavor(name="lc-active-standby", flavor_profile_id=profile.id, enabled=True)
    yield flavor.id
    lbapi.delete_flavor(flavor.id, ignore_missing=True)
    lbapi.delete_flavor_profile(profile.id, ignore_missing=True)


def test_lbswap_swaps_an_active_standby_tcp_load_balancer_without_failed_connections(
    cloud: Cloud, echo_member: Member, external_client: Guest, active_standby: str, tmp_path: Path
) -> None:
    """An ACTIVE_STANDBY load balancer with a TCP listener (keepalived in the amphorae, the VIP on the MASTER)
    swapped by `lbswap run` behind a floating IP under the probe: the clone ACTIVE_STANDBY too, 0 failed."""
    net, lbapi = cloud.conn.network, cloud.conn.load_balancer
    member = {
        "address": echo_member.guest.ip,
        "protocol_port": MEMBER_PORT,
        "subnet_id": cloud.info["tenant_subnet_id"],
    }
    pool = {"name": "lc-tcp-pool", "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN", "members": [member]}
    started = time.monotonic()
    source = lbapi.create_load_balancer(
        name="lcs-as",
        project_id=PROJECT,
        vip_subnet_id=cloud.info["tenant_subnet_id"],
        flavor_id=active_standby,
        listeners=[{"name": "lc-tcp", "protocol": "TCP", "protocol_port": 80, "default_pool": pool}],
    )
    known = {source.id}
    fip = None
    figures: dict[str, str] = {}
    try:
        wait_lb_online(cloud, source.id)
        figures["source ACTIVE and ONLINE"] = f"{time.monotonic() - started:.1f} s"
        assert roles_of(cloud, source.id) == ["BACKUP", "MASTER"]
        fip = net.create_ip(floating_network_id=cloud.info["external_network_id"], port_id=source.vip_port_id)
        stage = Stage(cloud, echo_member, external_client, fip.floating_ip_address, fip.id, tmp_path, known)
        clone_id, swapped = stage.swap(source.id, kill=False)
        figures.update(swapped)
        assert cloud.lb(clone_id).flavor_id == active_standby
        assert roles_of(cloud, clone_id) == ["BACKUP", "MASTER"]
    finally:
        clean_up(cloud, fip, known, "lcs-as")
        print_figures("lbswap's fip-swap of an ACTIVE_STANDBY load balancer (TCP listener)", figures)
