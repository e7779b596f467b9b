"""The probe the local backend runs inside its client namespace: one probe of one listener (clouds/reach.py),
then, for a listener that answered, one more new connection asking ``GET /`` for the address the member saw
(member.py echoes it: the address of the amphora that forwarded the connection), which the backend maps to the
load balancer that served it (``ProbeResult.served_by``).

``python -m lbswap.clouds.local.client_probe ADDRESS PORT PROTOCOL [...]`` prints one line of JSON: the probe
result, ``peer`` (None when no member answered with one) and ``peer_at`` (when that connection was opened)."""

from __future__ import annotations

import dataclasses
import json
import socket
import sys
import time
from collections.abc import Sequence

from lbswap.clouds.reach import probe_from_argv

# the members speak HTTP on every listener the local backend has (HTTP and TCP)
PEER_PROTOCOLS = ("HTTP", "TCP")
MAX_RESPONSE = 65536


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


def main(argv: Sequence[str] | None = None) -> int:
    args, result = probe_from_argv(argv, __doc__)
    peer, peer_at = None, None
    if result.ok and args.protocol in PEER_PROTOCOLS:
        peer_at = time.time()  # the host's clock, which is the local backend's
        peer = peer_of(args.address, args.port, min(args.timeout, 2.0))
    sys.stdout.write(json.dumps({**dataclasses.asdict(result), "peer": peer, "peer_at": peer_at}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
