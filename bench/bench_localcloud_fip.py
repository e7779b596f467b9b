"""Floating IP moves on the local cloud's real Neutron: what one `PUT /v2.0/floatingips/{id}` costs new connections.

Two load balancers (SINGLE, HTTP, one member each: the member's page names it) and one floating IP served by
Neutron's L3 agent to a client namespace on the external network. Each move: the probe opens new connections
through the floating IP at a fixed rate, the PUT moves it to the other load balancer, and the probe's records
tell when new connections switched. Prints per move the PUT time, the delay from the API's answer to the data
plane switching, failed connections and the longest gap, then median and maximum; and the local cloud's
memory (PSS) and the time `up` took. Asserts nothing. Needs root and scripts/setup-localcloud.sh.

    python bench/bench_localcloud_fip.py [--moves 20] [--rate 150] [--keep-up]

Brings the cloud up (scripts/local-cloud.sh up) unless it is up already, and down at the end unless --keep-up.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import openstack

from lbswap.localcloud import guests, probe

REPO = Path(__file__).resolve().parent.parent
DIR = Path(os.environ.get("LBSWAP_LOCALCLOUD_DIR", "/opt/lbswap-localcloud"))
PROJECT = "5a0c7e2d9b8f4c1e8d6a3b2c1f0e9d8c"


def local_cloud(action: str) -> float:
    started = time.monotonic()
    subprocess.run(["bash", str(REPO / "scripts" / "local-cloud.sh"), action], check=True)
    return time.monotonic() - started


def wait(what: str, check: Any, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.25)


def http_lb(conn: Any, info: dict[str, Any], name: str, member_ip: str) -> Any:
    pool = {
        "name": f"{name}-pool",
        "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN",
        "members": [{"address": member_ip, "protocol_port": 8080, "subnet_id": info["tenant_subnet_id"]}],
    }
    return conn.load_balancer.create_load_balancer(
        name=name,
        project_id=PROJECT,
        vip_subnet_id=info["tenant_subnet_id"],
        listeners=[{"name": f"{name}-http", "protocol": "HTTP", "protocol_port": 80, "default_pool": pool}],
    )


def http_get(client: guests.Guest, address: str) -> str:
    cmd = ["ip", "netns", "exec", client.ns, "curl", "-s", "-m", "2", f"http://{address}/"]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30).stdout.strip()


def pss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def memory(info: dict[str, Any]) -> dict[str, float]:
    """PSS of the controller's services (their process groups), Open vSwitch and the amphorae (their cgroups)."""
    run = Path(info["run_dir"])
    parts: dict[str, float] = {}
    for pidfile in sorted(run.glob("*.pid")):
        group = pidfile.read_text().strip()
        pids = subprocess.run(["pgrep", "-g", group], capture_output=True, text=True, check=False).stdout.split()
        parts[pidfile.stem] = pss_mib([int(p) for p in pids])
    ovs_pids = [int(p.read_text().strip()) for p in (run / "ovs").glob("*.pid")]
    parts["open vswitch"] = pss_mib(ovs_pids)
    cgroups = Path(info["cgroup_dir"])
    amp_pids = [int(p) for cg in cgroups.iterdir() if cg.is_dir() for p in (cg / "cgroup.procs").read_text().split()]
    parts["amphorae"] = pss_mib(amp_pids)
    return parts


def move_once(client: guests.Guest, address: str, move: Any, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    cmd = [sys.executable, "-m", "lbswap.localcloud.probe", address, "--out", str(out)]
    cmd += ["--rate", str(args.rate), "--duration", str(args.move_at + args.after)]
    with subprocess.Popen(["ip", "netns", "exec", client.ns, *cmd], stdout=subprocess.PIPE, text=True, env=env) as p:
        assert p.stdout is not None
        p.stdout.readline()
        time.sleep(args.move_at)
        put_started = time.monotonic()
        move()
        put_answered = time.monotonic()
        p.wait(timeout=args.move_at + args.after + 60)
    return {"records": probe.load(out), "put_started": put_started, "put_answered": put_answered}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--rate", type=float, default=150.0, help="new connections per second")
    parser.add_argument("--move-at", type=float, default=1.5, help="seconds into each probe")
    parser.add_argument("--after", type=float, default=8.0, help="seconds probed after the move started")
    parser.add_argument("--keep-up", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # the cleanup below runs on SIGTERM too
    up_seconds = None if (DIR / "cloud.json").is_file() else local_cloud("up")
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(DIR / "clouds.yaml"))
    info = json.loads((DIR / "cloud.json").read_text())
    conn = openstack.connect(cloud="lbswap-localcloud")
    made: list[guests.Guest] = []
    servers: list[subprocess.Popen[bytes]] = []
    lbs: list[Any] = []
    fip = None
    try:
        with tempfile.TemporaryDirectory(prefix="lbswap-bench-fip-") as tmp:
            tokens = []
            for i in range(2):
                member = guests.plug_tenant(conn, info, "lcm", PROJECT)
                made.append(member)
                tokens.append(f"member-{i}-{uuid.uuid4().hex[:8]}")
                servers.append(guests.serve(member, tokens[-1], Path(tmp) / tokens[-1]))
                lbs.append(http_lb(conn, info, f"bench-fip-{i}", member.ip))
            client = guests.plug_external(info)
            made.append(client)
            for lb in lbs:
                wait(
                    "ACTIVE",
                    lambda lb_id=lb.id: conn.load_balancer.get_load_balancer(lb_id).provisioning_status == "ACTIVE",
                )
            vip_ports = [conn.load_balancer.get_load_balancer(lb.id).vip_port_id for lb in lbs]
            fip = conn.network.create_ip(floating_network_id=info["external_network_id"], port_id=vip_ports[0])
            address = fip.floating_ip_address
            # from the client's namespace only: this host's own routes do not lead to the external network
            wait("served through the floating IP", lambda: http_get(client, address) == tokens[0], timeout=60)
            rows = []
            print(
                f"{'move':>4} {'to':>3} {'PUT s':>6} {'answered->switched s':>21} {'failed':>6} "
                f"{'gap ms':>6} {'source after answer':>19} {'median conn ms':>14}"
            )
            for n in range(args.moves):
                target = (n + 1) % 2
                result = move_once(
                    client,
                    address,
                    lambda t=target: conn.network.update_ip(fip, port_id=vip_ports[t]),
                    args,
                    Path(tmp) / f"move-{n}.json",
                )
                m = probe.analyze(result["records"], tokens[target], result["put_answered"])
                delay = m.delay_after(result["put_answered"])
                put = result["put_answered"] - result["put_started"]
                conn_ms = statistics.median(r.end - r.start for r in result["records"]) * 1000
                rows.append((put, delay, m.failed, m.longest_gap))
                shown = "never" if delay is None else f"{delay:.2f}"
                print(
                    f"{n + 1:>4} {target + 1:>3} {put:>6.2f} {shown:>21} {m.failed:>6} "
                    f"{m.longest_gap * 1000:>6.0f} {m.source_after_answer:>19} {conn_ms:>14.1f}",
                    flush=True,
                )
            puts = [r[0] for r in rows]
            delays = [r[1] for r in rows if r[1] is not None]
            print(f"\n{args.moves} moves at {args.rate:.0f} new connections/s:")
            print(f"  PUT time                     median {statistics.median(puts):.2f} s, max {max(puts):.2f} s")
            if delays:
                print(
                    f"  API answered -> switched     median {statistics.median(delays):.2f} s, "
                    f"max {max(delays):.2f} s ({args.moves - len(delays)} never switched)"
                )
            print(
                f"  failed connections           {sum(r[2] for r in rows)} of "
                f"{sum(len(probe.load(Path(tmp) / f'move-{n}.json')) for n in range(args.moves))}"
            )
            print(
                f"  longest gap                  {max(r[3] for r in rows) * 1000:.0f} ms "
                f"(probe spacing {1000 / args.rate:.1f} ms)"
            )
            parts = memory(info)
            print(
                f"  memory (PSS)                 {sum(parts.values()):.0f} MiB: "
                + ", ".join(f"{k} {v:.0f}" for k, v in parts.items())
            )
            if up_seconds is not None:
                print(f"  local cloud up               {up_seconds:.0f} s")
    finally:
        for server in servers:
            server.kill()
        if fip is not None:
            conn.network.delete_ip(fip, ignore_missing=True)
        for lb in lbs:
            conn.load_balancer.delete_load_balancer(lb.id, cascade=True, ignore_missing=True)
        for guest in made:
            guests.remove(conn, info, guest)
        for lb in lbs:
            wait("deleted", lambda lb_id=lb.id: conn.load_balancer.find_load_balancer(lb_id) is None)
        if not args.keep_up:
            print(f"  local cloud down             {local_cloud('down'):.0f} s")


if __name__ == "__main__":
    main()
