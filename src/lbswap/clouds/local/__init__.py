"""The local backend: a real data plane on this host (network namespaces, haproxy amphorae, keepalived,
nftables floating IPs). render.py is pure, apply.py touches the system, state.py persists, cloud.py is the
Cloud protocol and worker.py does Octavia's asynchronous work."""

from lbswap.clouds.local.cloud import LocalCloud

__all__ = ["LocalCloud"]
