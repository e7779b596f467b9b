"""The local backend: a real data plane on this host (network namespaces, haproxy amphorae, keepalived,
nftables floating IPs). render.py is pure, apply.py touches the system, state.py persists, body.py validates
create bodies, cloud.py is the Cloud protocol, worker.py does Octavia's asynchronous work and member.py serves
as a pool member. See docs/local.md."""

from lbswap.clouds.local.cloud import LocalCloud

__all__ = ["LocalCloud"]
