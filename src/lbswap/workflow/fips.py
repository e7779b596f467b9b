"""Floating IP moves: where each of the source's floating IPs goes on the clone, the compare-and-swap that moves
one (If-Match on its revision, re-read on 412), and the move back that a revert and `lbswap rollback` share."""

from __future__ import annotations

from collections.abc import Callable

from lbswap.clouds.base import Cloud
from lbswap.errors import CloudTimeout, LbswapError, NotFound, PreconditionFailed, SwapFailed
from lbswap.model import FloatingIP, LoadBalancer
from lbswap.workflow.context import SwapContext

#: where a floating IP goes: (port, fixed address on that port)
Target = tuple[str, str | None]


def flip_targets(source: LoadBalancer, clone: LoadBalancer) -> dict[str, Target]:
    """Floating IP id -> (clone port, clone fixed address) for every floating IP of the source.

    A floating IP on the main VIP goes to the clone's main VIP; one on an additional VIP goes to the clone's
    additional VIP on the same subnet. Octavia puts additional VIPs on the main VIP port (so the address tells
    them apart); a backend may also give them ports of their own.

    :raises SwapFailed: the clone has no VIP on the subnet of a floating IP's address.
    """
    by_subnet = {v.subnet_id: v for v in clone.additional_vips}
    extra_by_address = {v.ip_address: v for v in source.additional_vips if v.ip_address}
    extra_by_port = {v.port_id: v for v in source.additional_vips if v.port_id and v.port_id != source.vip_port_id}
    targets: dict[str, Target] = {}
    for fip in source.floating_ips:
        extra = None
        if fip.fixed_ip_address and fip.fixed_ip_address != source.vip_address:
            extra = extra_by_address.get(fip.fixed_ip_address)
        if extra is None and fip.port_id and fip.port_id != source.vip_port_id:
            extra = extra_by_port.get(fip.port_id)
        if extra is None:
            targets[fip.id] = (clone.vip_port_id or "", clone.vip_address)
            continue
        target = by_subnet.get(extra.subnet_id)
        if target is None:
            raise SwapFailed(
                f"the clone has no VIP on subnet {extra.subnet_id} for floating IP {fip.floating_ip_address}"
            )
        targets[fip.id] = (target.port_id or clone.vip_port_id or "", target.ip_address)
    return targets


def compare_and_swap(
    cloud: Cloud,
    fip_id: str,
    decide: Callable[[FloatingIP], Target | None],
    *,
    gave_up: LbswapError | None,
    attempts: int = 5,
    known: FloatingIP | None = None,
    retry_on: tuple[type[LbswapError], ...] = (PreconditionFailed, CloudTimeout),
    gone: Callable[[], None] | None = None,
) -> FloatingIP | None:
    """Move one floating IP in a compare-and-swap PUT: If-Match on the revision read just before.

    Each attempt reads the floating IP (the first takes ``known`` instead, when the caller read it just now) and
    asks ``decide`` where it goes: a target to move it there, None to leave it (it is where it belongs, or it is
    not ours to move); ``decide`` raises to refuse. An error in ``retry_on`` (412: someone changed it since the
    read; a timeout: the PUT may have happened) re-reads, and ``decide`` judges what is there now.

    Returns the floating IP as read before the move that succeeded; None when nothing was moved.

    :raises LbswapError: ``gave_up`` after ``attempts`` attempts (when None: returns None); what ``decide``
        raises; NotFound when the floating IP is gone, unless ``gone`` is given (then it is called instead).
    """
    for attempt in range(attempts):
        if attempt == 0 and known is not None:
            current = known
        else:
            try:
                current = cloud.get_floating_ip(fip_id)
            except NotFound:
                if gone is None:
                    raise
                gone()
                return None
        target = decide(current)
        if target is None:
            return None
        try:
            cloud.move_floating_ip(
                fip_id, port_id=target[0], fixed_ip_address=target[1], if_revision=current.revision_number
            )
        except retry_on:
            continue
        return current
    if gave_up is not None:
        raise gave_up
    return None


def move_back(
    ctx: SwapContext, source: LoadBalancer, targets: dict[str, Target], moved: dict[str, float] | None = None
) -> list[str]:
    """Point every floating IP that lbswap moved to the clone back where the snapshot had it; leave any other
    alone. ``targets`` is :func:`flip_targets` of the source and its clone. ``moved`` (if given) receives the
    address of each floating IP this call moved back and when the API answered.

    Returns what was left alone, for the operator: a floating IP someone else moved or deleted, and one whose move
    back gave up (a 412 or a timeout on every attempt: it may still point at the clone).
    """
    left_alone: list[str] = []
    clone_ports = {port for port, _fixed in targets.values()}
    attempts = 5
    for fip in source.floating_ips:

        def decide(current: FloatingIP, fip: FloatingIP = fip) -> Target | None:
            if current.port_id == fip.port_id:
                return None
            if current.port_id not in clone_ports:
                left_alone.append(f"{fip.floating_ip_address} (now on port {current.port_id}, not ours)")
                return None
            return fip.port_id or "", fip.fixed_ip_address  # a 412 re-reads: moved by our earlier attempt, or not

        def deleted(fip: FloatingIP = fip) -> None:
            left_alone.append(f"{fip.floating_ip_address} (deleted by someone else)")

        gave_up = SwapFailed(f"floating IP {fip.floating_ip_address}: the move back gave up")
        try:
            before = compare_and_swap(ctx.cloud, fip.id, decide, gave_up=gave_up, attempts=attempts, gone=deleted)
        except SwapFailed as exc:
            if exc is not gave_up:
                raise
            left_alone.append(
                f"{fip.floating_ip_address} (the move back to port {fip.port_id} gave up after {attempts} attempts, "
                "each a 412 or a timeout: it may still point at the clone)"
            )
            continue
        if before is not None:
            at = ctx.cloud.clock.now()
            ctx.record_flip(
                {
                    "floating_ip_address": fip.floating_ip_address,
                    "from_port": before.port_id,
                    "to_port": fip.port_id,
                    "at": at,
                    "back": True,
                }
            )
            if moved is not None:
                moved[fip.floating_ip_address] = at
    return left_alone
