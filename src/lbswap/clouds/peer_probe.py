"""One probe of one listener from inside a network namespace, and who served it: the probe of :mod:`.reach`,
then, for a listener that answered, one more new connection asking ``GET /`` for the address the member saw
(a member that echoes it answers ``member NAME peer ADDRESS``: the address of the amphora that forwarded the
connection), which the backend maps to the load balancer that served it (``ProbeResult.served_by``).

``python -m lbswap.clouds.peer_probe ADDRESS PORT PROTOCOL [...]`` prints one line of JSON: the probe result,
``peer`` (None when no member answered with one) and ``peer_at`` (when that connection was opened, on the host's
wall clock). :func:`in_netns` runs it inside a namespace made with ``ip netns`` (where a backend's clients are)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lbswap.clouds.reach import probe_from_argv
from lbswap.errors import CloudError

# the protocols whose members speak HTTP (an HTTP listener's, and a TCP listener's in the labs)
PEER_PROTOCOLS = ("HTTP", "TCP")
MAX_RESPONSE = 65536
NETNS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # what `ip netns add` makes, without path tricks
MODULE = "lbswap.clouds.peer_probe"


def peer_of(address: str, port: int, timeout: float) -> str | None:
    """The address the member saw on a new connection to ``address:port``, or None (no answer, no member)."""
    deadline = time.monotonic() + timeout
    data = b""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: lbswap-served-by\r\nUser-Agent: lbswap-verify\r\n\r\n")
            while len(data) < MAX_RESPONSE:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:  # refused, reset, timed out: nobody to name
        return None
    return parse_peer(data)


def parse_peer(response: bytes) -> str | None:
    """``peer ADDRESS`` from a member's response body (``member NAME peer ADDRESS``)."""
    words = response.partition(b"\r\n\r\n")[2].decode(errors="replace").split()
    if "peer" in words[:-1]:
        return words[words.index("peer") + 1]
    return None


def python_env() -> dict[str, str]:
    """A child Python imports this very lbswap (also when it runs from a source checkout)."""
    src = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def in_netns(netns: str, args: Sequence[str], timeout: float) -> dict[str, Any]:
    """``python -m lbswap.clouds.peer_probe ARGS`` inside the namespace ``netns``: its JSON answer.

    :raises CloudError: no such namespace, or the probe did not run or answer.
    """
    if not NETNS_NAME.fullmatch(netns) or not (Path("/run/netns") / netns).exists():
        raise CloudError(f"no network namespace {netns!r} (ip netns list)")
    cmd = ["ip", "netns", "exec", netns, sys.executable, "-m", MODULE, *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=python_env(), check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CloudError(f"the probe in namespace {netns} did not run: {exc}") from exc
    if done.returncode != 0:
        raise CloudError(f"the probe in namespace {netns} failed: {done.stderr.strip()[-400:]}")
    try:
        data = json.loads(done.stdout)
    except ValueError as exc:
        raise CloudError(f"the probe in namespace {netns} answered no JSON: {done.stdout[:200]!r}") from exc
    if not isinstance(data, dict):
        raise CloudError(f"the probe in namespace {netns} answered {done.stdout[:200]!r}")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    args, result = probe_from_argv(argv, __doc__)
    peer, peer_at = None, None
    if result.ok and args.protocol in PEER_PROTOCOLS:
        peer_at = time.time()  # the host's wall clock (the openstack and local backends' clock)
        peer = peer_of(args.address, args.port, min(args.timeout, 2.0))
    sys.stdout.write(json.dumps({**dataclasses.asdict(result), "peer": peer, "peer_at": peer_at}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
