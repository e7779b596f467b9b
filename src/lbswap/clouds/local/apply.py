"""Applying the local data plane: namespaces, veths, the tenant bridge, haproxy, keepalived, members and the
nftables ruleset. Each function is one small system step; subprocess failures become lbswap errors here."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lbswap.clouds.local import procs
from lbswap.clouds.local import state as st
from lbswap.clouds.peer_probe import python_env
from lbswap.errors import CloudError

NETNS_DIR = Path("/run/netns")  # where `ip netns add` mounts a namespace
RUN_ROOT = Path("/run/lbswap")  # short paths: a unix socket path must stay under 108 bytes
BRIDGE = "br-tenant"
WORKER_MODULE = "lbswap.clouds.local.worker"
REAP_WAIT = 5.0  # seconds `down` waits for the parent (pid 1 here) to reap what it stopped


def run(cmd: Sequence[str], *, stdin: str | None = None, check: bool = True, timeout: float = 30.0) -> str:
    """Run one command; a failure becomes a CloudError naming the command and its stderr."""
    try:
        done = subprocess.run(list(cmd), input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise CloudError(f"{cmd[0]} is not installed: run scripts/setup-dataplane.sh") from exc
    except subprocess.TimeoutExpired as exc:
        raise CloudError(f"`{' '.join(cmd)}` did not finish in {timeout:.0f} s") from exc
    if check and done.returncode != 0:
        raise CloudError(f"`{' '.join(cmd)}` failed ({done.returncode}): {done.stderr.strip()[:400]}")
    return done.stdout


def ns_run(ns: str, cmd: Sequence[str], **kwargs: Any) -> str:
    return run(["ip", "netns", "exec", ns, *cmd], **kwargs)


def names(prefix: str) -> dict[str, str]:
    return {"router": f"{prefix}-router", "client": f"{prefix}-client"}


def run_dir(prefix: str) -> Path:
    path = RUN_ROOT / prefix
    path.mkdir(parents=True, exist_ok=True)
    return path


def list_namespaces(prefix: str) -> list[str]:
    out = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.startswith(prefix + "-")]


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def kill_pid(pid: int | None, sig: signal.Signals = signal.SIGTERM) -> None:
    if pid and pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_gone(pid: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def spawn_detached(cmd: Sequence[str], *, ns: str | None = None, log: Path | None = None) -> None:
    """Start a long-lived process in its own session (it survives lbswap being killed); it records its pid."""
    full = ["setsid", "-f", *cmd]
    if ns:
        full = ["ip", "netns", "exec", ns, *full]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        subprocess.run(full, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=python_env(), check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise CloudError(f"could not start {' '.join(cmd[:3])}: {exc}") from exc
    finally:
        if log and not isinstance(out, int):
            out.close()


def client_probe(prefix: str, args: Sequence[str], timeout: float) -> str:
    """``python -m lbswap.clouds.local.client_probe ARGS`` inside the client namespace (where the lab's clients
    are): its one line of JSON (a probe result and the peer address the member saw)."""
    module = "lbswap.clouds.local.client_probe"
    cmd = ["ip", "netns", "exec", names(prefix)["client"], sys.executable, "-m", module, *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=python_env(), check=False)
    except subprocess.TimeoutExpired as exc:
        raise CloudError(f"the probe in the client namespace did not finish in {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise CloudError(f"the probe in the client namespace failed: {done.stderr.strip()[-400:]}")
    return done.stdout


# --- the lab: router, client, tenant bridge, members -------------------------------------------------------


def lab_up(prefix: str, members: Sequence[Mapping[str, Any]]) -> None:
    router, client = names(prefix)["router"], names(prefix)["client"]
    for ns in (router, client):
        run(["ip", "netns", "add", ns])
        ns_run(ns, ["ip", "link", "set", "lo", "up"])
    ns_run(router, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    for key in ("all", "default"):
        ns_run(router, ["sysctl", "-qw", f"net.ipv4.conf.{key}.rp_filter=0"])
    ns_run(client, ["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000"])
    ns_run(client, ["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"])
    run(["ip", "link", "add", "ext0", "netns", router, "type", "veth", "peer", "name", "eth0", "netns", client])
    ns_run(router, ["ip", "addr", "add", f"{st.ROUTER_EXTERNAL}/{st.EXTERNAL_PREFIX}", "dev", "ext0"])
    ns_run(router, ["ip", "link", "set", "ext0", "up"])
    ns_run(client, ["ip", "addr", "add", f"{st.CLIENT_ADDRESS}/{st.EXTERNAL_PREFIX}", "dev", "eth0"])
    ns_run(client, ["ip", "link", "set", "eth0", "up"])
    ns_run(client, ["ip", "route", "add", f"{st.FIP_NETWORK}.0/24", "via", st.ROUTER_EXTERNAL])
    ns_run(router, ["ip", "link", "add", BRIDGE, "type", "bridge"])
    ns_run(router, ["ip", "addr", "add", f"{st.TENANT_GATEWAY}/{st.TENANT_PREFIX}", "dev", BRIDGE])
    ns_run(router, ["ip", "link", "set", BRIDGE, "up"])
    # an unmapped floating IP is answered by the router itself (RST), as when a map misses
    ns_run(router, ["ip", "route", "add", "local", f"{st.FIP_NETWORK}.0/24", "dev", "lo"])
    for member in members:
        member_up(prefix, member)


def _plug(prefix: str, ns: str, port: str, addresses: Sequence[str]) -> None:
    """A namespace on the tenant bridge: veth ``port`` in the router, ``eth0`` inside."""
    router = names(prefix)["router"]
    run(["ip", "netns", "add", ns])
    run(["ip", "link", "add", port, "netns", router, "type", "veth", "peer", "name", "eth0", "netns", ns])
    ns_run(router, ["ip", "link", "set", port, "master", BRIDGE])
    ns_run(router, ["ip", "link", "set", port, "up"])
    ns_run(ns, ["ip", "link", "set", "lo", "up"])
    for address in addresses:
        ns_run(ns, ["ip", "addr", "add", f"{address}/{st.TENANT_PREFIX}", "dev", "eth0"])
    ns_run(ns, ["ip", "link", "set", "eth0", "up"])
    ns_run(ns, ["ip", "route", "add", "default", "via", st.TENANT_GATEWAY])


def member_up(prefix: str, member: Mapping[str, Any]) -> None:
    ns = f"{prefix}-{member['name']}"
    _plug(prefix, ns, member["name"], [member["address"]])
    pidfile = run_dir(prefix) / f"{member['name']}.pid"
    pidfile.unlink(missing_ok=True)
    # members and the probe run at a higher priority than the control plane sharing this host's cores
    cmd = ["nice", "-n", "-5", sys.executable, "-m", "lbswap.clouds.local.member", "--name", member["name"]]
    cmd += ["--port", str(st.MEMBER_PORT), "--pidfile", str(pidfile)]
    spawn_detached(cmd, ns=ns, log=run_dir(prefix) / f"{member['name']}.log")
    deadline = time.monotonic() + 10
    while not wait_listening(ns, member["address"], st.MEMBER_PORT, 0.2):
        if time.monotonic() > deadline:
            raise CloudError(f"member {member['name']} did not start listening")


def wait_listening(ns: str, address: str, port: int, timeout: float) -> bool:
    out = ns_run(ns, ["ss", "-Hltn", f"sport = :{port}"], check=False)
    if f"{address}:{port}" in out or f"*:{port}" in out or f"0.0.0.0:{port}" in out:
        return True
    time.sleep(timeout)
    return False


def lab_down(prefix: str, state_dir: Path) -> list[str]:
    """Take the whole lab away; returns the namespaces removed. Returns only once it is all gone: first the
    workers of ``state_dir`` (so that none plugs anything new), then every process in the lab's namespaces,
    then the namespaces, which hold every link and the nftables table.

    :raises CloudError: something could not be removed; one line names what (and the namespaces are kept while
        a process still runs in them, so that a second ``down`` finds it again).
    """
    workers = procs.stop(procs.runs_module(WORKER_MODULE, str(state_dir)))
    namespaces = list_namespaces(prefix)
    ids = {i for i in (procs.netns_id(NETNS_DIR / ns) for ns in namespaces) if i is not None}
    members = procs.stop(procs.in_netns(ids))
    if workers.running or members.running:
        stuck = dict.fromkeys(p.describe() for p in workers.running + members.running)
        raise CloudError(f"local cloud {prefix}: could not stop {', '.join(stuck)}")
    for ns in namespaces:
        run(["ip", "netns", "delete", ns], check=False)
    kept = list_namespaces(prefix)
    holders = [p for p in procs.scan() if procs.in_netns(ids)(p)]
    if kept or holders:
        what = [f"namespace {ns}" for ns in kept] + [f"{p.describe()} (in a deleted namespace)" for p in holders]
        raise CloudError(f"local cloud {prefix}: could not remove {', '.join(what)}")
    # exited is not enough: until reaped they are still in the process list (an operator's `pgrep haproxy`)
    procs.wait_reaped(workers.signalled + members.signalled, REAP_WAIT)
    directory = RUN_ROOT / prefix
    if directory.exists():
        for path in directory.iterdir():
            path.unlink(missing_ok=True)
        directory.rmdir()
    with contextlib.suppress(OSError):  # another cloud's directory may appear meanwhile: then it stays
        RUN_ROOT.rmdir()
    return namespaces


# --- amphorae -----------------------------------------------------------------------------------------------


def amphora_files(prefix: str, amphora: Mapping[str, Any]) -> dict[str, Path]:
    base = RUN_ROOT / prefix / f"a{amphora['index']}"  # a read must not recreate the directory after `down`
    return {
        "cfg": base.with_suffix(".cfg"),
        "pid": base.with_suffix(".pid"),
        "sock": base.with_suffix(".sock"),
        "vrrp": base.with_suffix(".vrrp"),
        "kpid": base.with_suffix(".kpid"),
        "vpid": base.with_suffix(".vpid"),
    }


def amphora_up(
    prefix: str,
    amphora: Mapping[str, Any],
    *,
    vip: str | None,
    haproxy_cfg: str,
    keepalived_cfg: str | None,
    fault_nft: str | None = None,
) -> None:
    """Plug a new amphora namespace, then start haproxy (and keepalived for ACTIVE_STANDBY) in it.

    A SINGLE amphora holds the VIP itself (``vip``); a pair leaves it to keepalived. Either way haproxy may
    bind the VIP before holding it (Octavia sets ``ip_nonlocal_bind`` too)."""
    ns = amphora["ns"]
    _plug(prefix, ns, f"a{amphora['index']}", [amphora["address"]] + ([vip] if vip else []))
    ns_run(ns, ["sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1"])
    if fault_nft is not None:  # an image published with the refuse fault (render.render_fault_nft)
        ns_run(ns, ["nft", "-f", "-"], stdin=fault_nft)
    run_dir(prefix)
    files = amphora_files(prefix, amphora)
    files["cfg"].write_text(haproxy_cfg)
    files["pid"].unlink(missing_ok=True)
    # the worker runs at nice 5: the amphora's processes get back the data plane's priority
    ns_run(ns, ["nice", "-n", "-5", "haproxy", "-D", "-p", str(files["pid"]), "-f", str(files["cfg"])])
    if keepalived_cfg is not None:
        files["vrrp"].write_text(keepalived_cfg)
        keepalived = ["keepalived", "-n", "-l", "-f", str(files["vrrp"])]
        spawn_detached(["nice", "-n", "-5", *keepalived, "-p", str(files["kpid"]), "-r", str(files["vpid"])], ns=ns)
    if vip:
        gratuitous_arp(ns, vip)


def gratuitous_arp(ns: str, address: str) -> None:
    """Tell the router the VIP moved to this MAC now, instead of when its neighbour entry ages (~45 s)."""
    spawn_detached(["arping", "-q", "-U", "-c", "2", "-w", "1", "-I", "eth0", address], ns=ns)


def amphora_down(prefix: str, amphora: Mapping[str, Any], *, soft: bool, timeout: float = 10.0) -> None:
    """Take an amphora away. ``soft``: haproxy finishes its connections first (a delete after the drain).
    Otherwise the VM is gone at once: unplugged first, so clients see no FIN and no RST, as with Nova."""
    files = amphora_files(prefix, amphora)
    ns, router = amphora["ns"], names(prefix)["router"]
    pid = read_pid(files["pid"])
    if soft:
        kill_pid(pid, signal.SIGUSR1)
        if not wait_gone(pid, timeout):
            kill_pid(pid, signal.SIGTERM)
    else:
        run(["ip", "-n", router, "link", "del", f"a{amphora['index']}"], check=False)
    kill_pid(read_pid(files["kpid"]), signal.SIGTERM)
    netns = procs.netns_id(NETNS_DIR / ns)
    if netns is not None:
        left = procs.stop(procs.in_netns({netns}), grace=0.0).running
        if left:  # the namespace stays: `local down` finds these again
            raise CloudError(f"amphora {ns}: could not stop {', '.join(p.describe() for p in left)}")
        run(["ip", "netns", "delete", ns], check=False)
    run(["ip", "-n", router, "link", "del", f"a{amphora['index']}"], check=False)
    for path in files.values():
        path.unlink(missing_ok=True)


def haproxy_running(prefix: str, amphora: Mapping[str, Any]) -> bool:
    return pid_alive(read_pid(amphora_files(prefix, amphora)["pid"]))


def haproxy_stats(prefix: str, amphora: Mapping[str, Any]) -> list[dict[str, str]] | None:
    """``show stat`` from the amphora's stats socket as rows, or None when haproxy does not answer."""
    path = amphora_files(prefix, amphora)["sock"]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            sock.connect(str(path))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError:
        return None
    lines = b"".join(chunks).decode(errors="replace").splitlines()
    if not lines or not lines[0].startswith("# "):
        return None
    header = lines[0][2:].split(",")
    return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]


def load_nft(prefix: str, ruleset: str) -> None:
    """Replace the floating IP table in one ``nft -f`` transaction (atomic: no flow ever sees a half-move)."""
    ns_run(names(prefix)["router"], ["nft", "-f", "-"], stdin=ruleset)


def flush_conntrack(prefix: str, floating_ip: str) -> None:
    ns_run(names(prefix)["router"], ["conntrack", "-D", "--orig-dst", floating_ip], check=False)
