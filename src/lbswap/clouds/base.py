"""The Cloud protocol: the one boundary between lbswap and a cloud (OpenStack, the local data plane, the fake).

Everything above it is plain logic over :mod:`lbswap.model` values. Every method translates its backend's
exceptions into :mod:`lbswap.errors` once, here, keeping ``status_code`` and ``request_id``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from lbswap.errors import CloudError
from lbswap.model import (
    Amphora,
    Flavor,
    FloatingIP,
    Image,
    LBSummary,
    LoadBalancer,
    Provider,
    QuotaUsage,
    StackResource,
    Stats,
)


class Clock(Protocol):
    """Time as lbswap sees it. Backends with simulated time (the fake) supply their own."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclass(frozen=True)
class ProbeResult:
    """One probe of one listener (see :meth:`Cloud.probe_listener`).

    ``ok``: the exchange the protocol calls for completed (TCP: connected and not reset or closed at once;
    HTTP: a response with a status; TLS: a handshake, then a response; UDP: a reply). ``error`` says what went
    wrong otherwise (``refused``, ``reset``, ``timeout``, ``closed``, ...). ``reachable`` is False when this
    backend cannot send traffic to the address at all: then nothing is known about the listener.

    ``served_by``: the id of the load balancer whose amphora served this probe's connection, where the backend
    can tell (local: the address the member saw; fake: its modeled data plane), else None (openstack today). A
    floating IP's data plane follows the API late (Neutron's L3 agent rewrites its NAT rules after the PUT
    answered), so right after a move this may still name the load balancer the floating IP left. ``served_at``:
    when that connection was opened, on the cloud's clock (a probe's own overhead, such as starting a process in
    a namespace, can take far longer than the connection), else None.
    """

    ok: bool
    status: int | None = None
    cert_fingerprint: str | None = None
    error: str | None = None
    seconds: float = 0.0
    reachable: bool = True
    served_by: str | None = None
    served_at: float | None = None


@runtime_checkable
class Cloud(Protocol):
    """Where load balancers live.

    Conventions for every method:

    - ``NotFound`` when the named object does not exist (a delete of a missing object is *not* an error:
      deletes are idempotent and return quietly).
    - ``Conflict`` when Octavia refuses because the object is immutable (``PENDING_*``) or in use.
    - ``CloudTimeout`` when the request did not answer: the call may or may not have taken effect, so the
      caller must re-read before retrying (every workflow step does).
    - ``CloudError`` for anything else the API refused.
    - No method retries a side effect by itself, and none rolls anything back by itself: a failure
      leaves the cloud as the failed call left it, and the workflow's revert decides what to undo.
    """

    #: Short backend name for reports: ``openstack``, ``local`` or ``fake``.
    kind: str

    @property
    def clock(self) -> Clock:
        """The clock the workflow waits on (simulated for the fake backend)."""
        ...

    def spec(self) -> str:
        """A string that reopens this cloud with :func:`lbswap.clouds.open_cloud`, free of secrets.

        It is stored in the journal so that ``lbswap resume`` reaches the same cloud.
        """
        ...

    def identity(self) -> str:
        """Which cloud this is, free of secrets: stored with a campaign, which is never resumed, rolled back
        or finalized against a cloud whose identity differs (fake: an id written into the state file at seed;
        openstack: auth URL, project and region; local: the state directory)."""
        ...

    # --- reading --------------------------------------------------------------------------------------

    def list_load_balancers(
        self, *, project_id: str | None = None, tags: Sequence[str] = (), tags_any: Sequence[str] = ()
    ) -> list[LBSummary]:
        """Every load balancer visible to the caller, optionally of one project, optionally only those carrying
        every one of ``tags`` (Octavia's ``tags`` filter; what the status watcher lists a campaign's clones by) and,
        with ``tags_any``, at least one of those (Octavia's ``tags-any``: the status watcher's clones in flight).

        :raises CloudError: the listing failed.
        """
        ...

    def get_load_balancer(self, lb_id: str) -> LBSummary:
        """One load balancer's status, cheaply (what polling uses).

        :raises NotFound: no such load balancer.
        """
        ...

    def read_graph(self, lb_id: str) -> LoadBalancer:
        """The whole graph: listeners, pools, members (with operating status), health monitors, L7 policies
        and rules, the floating IPs on the VIP port and additional VIP ports, and the amphorae.

        :raises NotFound: no such load balancer.
        """
        ...

    def get_stats(self, lb_id: str) -> Stats:
        """The load balancer's statistics (Octavia refreshes them once per heartbeat, ~10 s).

        :raises NotFound: no such load balancer.
        """
        ...

    def list_amphorae(self, lb_id: str) -> list[Amphora]:
        """The amphorae of a load balancer with their role and image (empty for non-amphora providers)."""
        ...

    # --- load balancer lifecycle ----------------------------------------------------------------------

    def create_load_balancer(self, body: Mapping[str, Any]) -> LBSummary:
        """Create a load balancer in one fully-populated create (the body clone.py builds).

        Returns at once with ``PENDING_CREATE``; the caller waits.

        :raises QuotaExceeded: over the project's quota; nothing was created.
        :raises CloudError: the body was refused (validation, provider, flavor); nothing was created.
        :raises CloudTimeout: the call may have created it: look for the marker tags before retrying.
        """
        ...

    def delete_load_balancer(self, lb_id: str, *, cascade: bool = True) -> None:
        """Start a (cascade) delete, and clean up what the backend knows it leaves behind (VIP ports).

        Returns at once; a missing load balancer is not an error.

        :raises Conflict: the load balancer is in ``PENDING_*``; retry once it is not.
        """
        ...

    def rename_load_balancer(self, lb_id: str, name: str) -> None:
        """Set a load balancer's name (used on the clone only, never on the source).

        :raises NotFound: no such load balancer.
        :raises Conflict: the load balancer is in ``PENDING_*``.
        """
        ...

    def failover_load_balancer(self, lb_id: str) -> None:
        """Octavia's load balancer failover: rebuild every amphora in place.

        :raises Conflict: the load balancer is in ``PENDING_*``.
        """
        ...

    def failover_amphora(self, amphora_id: str) -> None:
        """Rebuild one amphora in place (its load balancer goes ``PENDING_UPDATE``).

        :raises NotFound: no such amphora.
        :raises Conflict: its load balancer is in ``PENDING_*``.
        """
        ...

    # --- floating IPs ---------------------------------------------------------------------------------

    def list_floating_ips(self, *, port_id: str | None = None, tag: str | None = None) -> list[FloatingIP]:
        """Floating IPs, optionally those on one port or those carrying one tag."""
        ...

    def get_floating_ip(self, fip_id: str) -> FloatingIP:
        """:raises NotFound: no such floating IP."""
        ...

    def move_floating_ip(
        self, fip_id: str, *, port_id: str, fixed_ip_address: str | None, if_revision: int
    ) -> FloatingIP:
        """Point a floating IP at another port in one compare-and-swap PUT (If-Match: revision_number).

        The floating IP is never disassociated on the way: it points to the old port until the new one.

        :raises PreconditionFailed: the revision moved on since it was read; nothing changed. Re-read it.
        :raises NotFound: no such floating IP or port.
        """
        ...

    def create_floating_ip(self, *, floating_network_id: str, port_id: str, tags: Sequence[str]) -> FloatingIP:
        """A new floating IP on ``port_id`` (the temporary probe address), tagged for cleanup.

        :raises QuotaExceeded: no floating IP quota left.
        """
        ...

    def delete_floating_ip(self, fip_id: str) -> None:
        """Release a floating IP; a missing one is not an error."""
        ...

    def probe_listener(
        self,
        address: str,
        port: int,
        protocol: str,
        *,
        path: str = "/",
        host: str | None = None,
        sni: str | None = None,
        payload: bytes | None = None,
        timeout: float = 3.0,
    ) -> ProbeResult:
        """Send one request to a listener through a floating IP, from where the backend's clients are
        (openstack: this host; local: the lab's client namespace; fake: modeled from the image the load
        balancer behind ``address`` booted). HTTP: ``GET path`` with ``Host: host``; TERMINATED_HTTPS: the
        same over TLS with ``sni`` (certificate fingerprint in the result); UDP: ``payload``, one datagram back.

        Never raises for what the listener did (refused, reset, timed out): that is the result. A backend that
        cannot reach the address returns ``reachable=False``. A backend that can tell which load balancer served
        the connection says so in ``served_by`` (what the post-flip check waits on: see ProbeResult).
        """
        ...

    # --- pre-flight -----------------------------------------------------------------------------------

    def get_quota(self, project_id: str) -> QuotaUsage:
        """Limits and usage for ``load_balancer``, ``listener``, ``pool``, ``member``, ``health_monitor``,
        ``l7policy``, ``port`` and ``floatingip``."""
        ...

    def subnet_free_addresses(self, subnet_id: str) -> int | None:
        """How many addresses are still free in a subnet (None when the backend cannot tell).

        :raises NotFound: no such subnet.
        """
        ...

    def can_read_secret(self, ref: str) -> bool:
        """Whether the caller can read a TLS container/secret (Barbican) reference."""
        ...

    def get_flavor(self, name_or_id: str) -> Flavor:
        """A load balancer flavor with its profile's topology and amp_image_tag.

        :raises NotFound: no such flavor.
        """
        ...

    def get_provider(self, name: str) -> Provider:
        """A provider and the listener protocols and algorithms it supports.

        :raises NotFound: no such provider.
        """
        ...

    def list_images(self, tag: str) -> list[Image]:
        """Amphora images carrying ``tag``, newest first."""
        ...

    def list_stack_resources(self) -> list[StackResource]:
        """Load balancers held by orchestration stacks (Heat, Magnum) visible to the caller; empty where the
        cloud has no orchestration service."""
        ...

    def service_compute_quota(self) -> QuotaUsage | None:
        """Octavia's service project compute quota (``instances``, ``cores``, ``ram``, ``server_groups``) where
        the caller may read it, else None (the plan then says capacity is unknown)."""
        ...

    def close(self) -> None:
        """Release connections and flush state (the fake writes its state file)."""
        ...


# --- for backends that validate a fully-populated create the way Octavia's API does (fake, local) ---------


def validation_failure(message: str) -> CloudError:
    """Octavia's 400 for a create body it refuses."""
    return CloudError(f"Validation failure: {message}", status_code=400)


def pool_ref(names: Mapping[str, str], ref: Any) -> str | None:
    """The id of the pool a create body references by name (``{"name": ...}``), or None for no reference.

    :raises CloudError: 400 when the body references a pool it does not define.
    """
    if ref is None:
        return None
    name = ref.get("name") if isinstance(ref, dict) else None
    if not isinstance(name, str) or name not in names:
        raise validation_failure(f"pool {name!r} is referenced but not defined in the body")
    return names[name]


def summary_of(record: Mapping[str, Any], *, operating_status: str | None = None) -> LBSummary:
    """The poll summary of a load balancer record as the emulating backends keep it (Octavia's API fields)."""
    return LBSummary(
        id=record["id"],
        name=record["name"],
        provisioning_status=record["provisioning_status"],
        operating_status=operating_status or record["operating_status"],
        vip_address=record["vip_address"],
        vip_port_id=record["vip_port_id"],
        tags=tuple(record["tags"]),
        project_id=record["project_id"],
        provider=record["provider"],
        flavor_id=record["flavor_id"],
    )


def listed(
    record: Mapping[str, Any], project_id: str | None, tags: Sequence[str], tags_any: Sequence[str] = ()
) -> bool:
    """Whether a load balancer record passes a listing's filters: its project, every one of ``tags`` and, when
    ``tags_any`` is not empty, one of those."""
    return (
        project_id in (None, record["project_id"])
        and set(tags) <= set(record["tags"])
        and (not tags_any or not set(tags_any).isdisjoint(record["tags"]))
    )
