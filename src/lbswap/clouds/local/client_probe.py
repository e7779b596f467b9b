"""The probe the local backend runs inside its client namespace: :mod:`lbswap.clouds.peer_probe` (one probe of
one listener, then the address the member saw on one more new connection), which the backend maps to the load
balancer that served it (``ProbeResult.served_by``).

``python -m lbswap.clouds.local.client_probe ADDRESS PORT PROTOCOL [...]`` prints one line of JSON: the probe
result, ``peer`` (None when no member answered with one) and ``peer_at`` (when that connection was opened)."""

from __future__ import annotations

import sys

from lbswap.clouds.peer_probe import PEER_PROTOCOLS, main, parse_peer, peer_of

__all__ = ["PEER_PROTOCOLS", "main", "parse_peer", "peer_of"]

if __name__ == "__main__":
    sys.exit(main())
