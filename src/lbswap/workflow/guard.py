"""What every swap checks before it acts: a stop was asked for, the journal is still there, the lease is ours.

A campaign has one driver at a time (I9): the process that holds its lease in the journal. The guard renews the
lease in the background and checks it before every side effect on the cloud (fencing), so a process that was
paused or partitioned and lost its lease stops without acting. A signal, a lost lease, a deleted journal or a
failed journal write all end in :class:`~lbswap.errors.StopSwap`, which unwinds a swap like a crash would:
nothing is reverted, the step in flight is re-run by ``lbswap resume`` (every step is idempotent).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from lbswap.clouds.base import Clock, Cloud, SystemClock
from lbswap.errors import StopSwap
from lbswap.journal import HEARTBEAT_SECONDS, Journal, Lease
from lbswap.model import FloatingIP, LBSummary

LOG = logging.getLogger(__name__)


class StopRequest:
    """Set from a signal handler (or by a swap that must stop them all); read by every guard check."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""
        self.exit_code = 1

    def set(self, reason: str, exit_code: int = 1) -> None:
        if not self.event.is_set():
            self.reason, self.exit_code = reason, exit_code
            self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    def error(self) -> StopSwap:
        return StopSwap(self.reason, exit_code=self.exit_code)


class Guard:
    """One campaign's lease, heartbeat and stop checks."""

    def __init__(self, journal: Journal, lease: Lease, stop: StopRequest | None = None) -> None:
        self.journal = journal
        self.lease = lease
        self.stop = stop or StopRequest()
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{lease.campaign_id}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._halt.wait(HEARTBEAT_SECONDS):
            try:
                held = self.journal.heartbeat(self.lease)
            except (StopSwap, Exception) as exc:  # a failed heartbeat is retried; fencing decides
                LOG.debug("lease heartbeat failed: %s", exc)
                continue
            if not held:
                self.stop.set(f"campaign {self.lease.campaign_id}: this process lost its lease; it stopped")
                return

    def check(self) -> None:
        """At every step boundary and wait: :raises StopSwap: asked to stop, or the journal is gone."""
        if self.stop.is_set():
            raise self.stop.error()
        try:
            self.journal.check_present()
        except StopSwap as exc:
            self.stop.set(exc.message)
            raise

    def before_side_effect(self) -> None:
        """Fencing: :raises StopSwap: as :meth:`check`, or the lease is no longer this process's."""
        self.check()
        try:
            self.journal.check_lease(self.lease)
        except StopSwap as exc:
            self.stop.set(exc.message)
            raise

    def close(self, *, release: bool = True) -> None:
        self._halt.set()
        self._thread.join(timeout=HEARTBEAT_SECONDS * 2)
        if release:
            try:
                self.journal.release_lease(self.lease)
            except (StopSwap, Exception) as exc:  # a lease left behind is taken over: the holder is gone
                LOG.debug("could not release the lease: %s", exc)


class _GuardedClock:
    def __init__(self, clock: Clock, guard: Guard) -> None:
        self._clock = clock
        self._guard = guard

    def now(self) -> float:
        return self._clock.now()

    def sleep(self, seconds: float) -> None:
        self._guard.check()
        if isinstance(self._clock, SystemClock):  # real time: wake at once when a stop is asked for
            self._guard.stop.event.wait(max(seconds, 0.0))
        else:
            self._clock.sleep(seconds)
        self._guard.check()


class GuardedCloud:
    """The campaign's view of the cloud: every side effect passes the guard first; reads pass through."""

    def __init__(self, cloud: Cloud, guard: Guard) -> None:
        self.wrapped = cloud
        self.guard = guard
        self.kind = cloud.kind
        self._clock = _GuardedClock(cloud.clock, guard)

    @property
    def clock(self) -> Clock:
        return self._clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)

    # side effects: fenced
    def create_load_balancer(self, body: Mapping[str, Any]) -> LBSummary:
        self.guard.before_side_effect()
        return self.wrapped.create_load_balancer(body)

    def delete_load_balancer(self, lb_id: str, *, cascade: bool = True) -> None:
        self.guard.before_side_effect()
        self.wrapped.delete_load_balancer(lb_id, cascade=cascade)

    def rename_load_balancer(self, lb_id: str, name: str) -> None:
        self.guard.before_side_effect()
        self.wrapped.rename_load_balancer(lb_id, name)

    def failover_load_balancer(self, lb_id: str) -> None:
        self.guard.before_side_effect()
        self.wrapped.failover_load_balancer(lb_id)

    def failover_amphora(self, amphora_id: str) -> None:
        self.guard.before_side_effect()
        self.wrapped.failover_amphora(amphora_id)

    def move_floating_ip(
        self, fip_id: str, *, port_id: str, fixed_ip_address: str | None, if_revision: int
    ) -> FloatingIP:
        self.guard.before_side_effect()
        return self.wrapped.move_floating_ip(
            fip_id, port_id=port_id, fixed_ip_address=fixed_ip_address, if_revision=if_revision
        )

    def create_floating_ip(self, *, floating_network_id: str, port_id: str, tags: Sequence[str]) -> FloatingIP:
        self.guard.before_side_effect()
        return self.wrapped.create_floating_ip(floating_network_id=floating_network_id, port_id=port_id, tags=tags)

    def delete_floating_ip(self, fip_id: str) -> None:
        self.guard.before_side_effect()
        self.wrapped.delete_floating_ip(fip_id)
