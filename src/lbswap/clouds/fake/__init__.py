"""A file-backed simulator of Octavia and Neutron where lbswap depends on them, with fault and crash injection.

The whole cloud lives in one state file (store), locked and rewritten atomically after every side-effecting
call, so that another process (``lbswap resume`` after a crash) sees exactly what the crashed one left. Time
is simulated and stored in the file (clock): ``clock.sleep(s)`` advances it, nothing sleeps for real.

Behaviour (what lbswap relies on):

- creates, renames, failovers and deletes put the load balancer in ``PENDING_*``; it settles ``latency``
  simulated seconds later into ``ACTIVE`` (or ``ERROR`` when a fault says so; a delete removes it) (octavia);
- any change to a load balancer in ``PENDING_*`` is refused with 409 (``Conflict``);
- a fully-populated create is validated: subnet, flavor, provider protocols and algorithms, pools referenced
  by name and defined once, quotas, free addresses in the VIP subnet, a free ``vip_address``;
- floating IPs carry ``revision_number``; a move with a stale ``if_revision`` is refused with 412 (neutron);
- statistics: a load balancer reached by a floating IP has ``active_connections``; once none reaches it, they
  drain to 0 over ``drain_seconds``; statistics lag one heartbeat (``stats_lag``);
- amphorae boot the newest image carrying the flavor's ``amp_image_tag`` (default ``amphora``); failover
  rebuilds them on it.

Faults and crashes are set with ``set_faults`` (faults); ``seed_sample`` and ``seed_from_snapshot`` (seed)
make a new cloud. Every side-effecting call is appended to ``audit`` so that tests can check the invariants.
"""

from lbswap.clouds.fake.cloud import FakeCloud
from lbswap.clouds.fake.faults import EXIT_CRASH, SIDE_EFFECTS, clear_faults, set_faults
from lbswap.clouds.fake.seed import sample_body, seed_from_snapshot, seed_sample
from lbswap.clouds.fake.store import DEFAULT_PROJECT, EXTERNAL_NETWORK, STATE_VERSION, empty_state

__all__ = [
    "DEFAULT_PROJECT",
    "EXIT_CRASH",
    "EXTERNAL_NETWORK",
    "SIDE_EFFECTS",
    "STATE_VERSION",
    "FakeCloud",
    "clear_faults",
    "empty_state",
    "sample_body",
    "seed_from_snapshot",
    "seed_sample",
    "set_faults",
]
