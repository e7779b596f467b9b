"""The ``openstack`` backend: the Cloud protocol over openstacksdk's load_balancer, network and image proxies.

Configured the OpenStack way (clouds.yaml and ``--os-cloud``, ``OS_CLOUD``, or the ``OS_*`` variables).
Octavia and Neutron are called through the SDK's proxies (keystoneauth sessions: auth, endpoints, request
ids); the load balancer graph is read as Octavia's own JSON so that it maps one to one onto :mod:`lbswap.model`.
Every foreign exception is translated once, in :func:`.api.translate`, keeping the status code and request id.
Parts: ``api`` (constants, errors, JSON to model), ``rest`` (calls), ``graph`` (read_graph), ``preflight``
(the plan's reads), ``cloud`` (OpenStackCloud: the rest, lifecycle and floating IPs).

What the backend does beyond plain calls, and why:

- ``delete_load_balancer`` and a ``get_load_balancer`` that finds the load balancer gone delete the VIP port
  ``octavia-lb-<id>`` when it is still there (Octavia with the noop network driver leaves it behind; a real
  deployment deletes it itself, so the sweep finds nothing). Only that load balancer's port is touched.
- ``list_images`` returns ``[]`` when the cloud has no image API (the noop test stack has none).
- ``can_read_secret`` returns True when the cloud has no key manager (no Barbican: there is nothing that
  could refuse the clone's TLS references).
- ``subnet_free_addresses`` returns None when Neutron's network-ip-availability API is not reachable.
- ``probe_listener`` sends its probe from this host, or, with the backend option ``probe-netns``
  (``openstack:CLOUD?probe-netns=NS``), from inside the network namespace NS (where the clients are when this
  host is not on the external network: the local cloud's tests); there, a member that echoes the address it saw
  (``member NAME peer ADDRESS``) lets it say which load balancer served (``served_by``: the amphora with that
  address, through the admin-only amphora API), which the post-flip settle wait waits on.

How a graph is read, and why it is not one call per object:

- Children by their parent, with Octavia's list filters: listeners and pools by load balancer, members per
  pool, L7 policies per listener, rules per policy; health monitors by id (Octavia filters by one value
  only, so a health monitor list by pool costs the same one call per pool).
- Reused when provably unchanged. Octavia changes a listener, pool, member, health monitor, L7 policy or
  rule only while the load balancer is locked: the API sets it ``PENDING_UPDATE`` and the worker or driver
  sets it ``ACTIVE`` at the end, and both writes move its ``updated_at``. So the children read while the
  load balancer was ``ACTIVE`` are still true when it is ``ACTIVE`` again with the same ``updated_at``,
  provided that write was at least :attr:`OpenStackCloud.graph_settle` seconds older than the read
  (``updated_at`` has whole seconds, and the API and worker hosts' clocks may differ a little). A reused
  graph still gets its member health from the status tree, and its floating IPs and every load balancer
  field from fresh calls: three calls instead of one per object. Anything unexpected (a member the status
  tree does not show, a listener or pool id that changed) means a full read.
- Amphorae likewise, for at most :attr:`OpenStackCloud.amphorae_reuse` seconds: their role, status and image
  change only in flows that lock the load balancer (failover, delete); only a certificate's expiry moves
  without that lock (housekeeping rotates it weeks before it expires, and the plan reads it in days).
- Never reused: floating IPs (the flip's compare-and-swap and the refusal to delete a load balancer a
  floating IP points at read them fresh), member health, and a load balancer's own fields and status.
- A subnet's network, once a load balancer read showed it (``subnet_free_addresses`` needs it).
- Octavia's provider names (its configuration): a name not among those last listed lists them again.
- The amphora API is admin-only: after one 403 it is not asked again (no amphorae, as before).
"""

from lbswap.clouds.openstack.api import DEFAULT_API_TIMEOUT, GRAPH_CACHE_SIZE, GRAPH_SETTLE, VIP_PORT_PREFIX, public_url
from lbswap.clouds.openstack.cloud import OpenStackCloud

_public_url = public_url  # the name tests knew it by

__all__ = ["DEFAULT_API_TIMEOUT", "GRAPH_CACHE_SIZE", "GRAPH_SETTLE", "VIP_PORT_PREFIX", "OpenStackCloud", "public_url"]
