"""What the swaps that run at once need, against what the cloud has free. Pure.

A clone needs, on each VIP subnet, one address for its VIP and one per amphora (Octavia's VRRP ports), and one
port in the project for its VIP. ``--parallel`` (or ``--max-creating``) clones can be built at once: the plan
blocks a fleet whose in-flight clones could not all get their addresses, before anything starts, rather than
half-start it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def amphorae(topology: str) -> int:
    return 2 if topology == "ACTIVE_STANDBY" else 1


@dataclass(frozen=True)
class CloneNeed:
    """One planned clone's needs: addresses per subnet."""

    lb_id: str
    subnets: tuple[str, ...]  # one entry per VIP the clone gets (main first)
    topology: str

    def addresses(self) -> dict[str, int]:
        need: dict[str, int] = {}
        for index, subnet in enumerate(self.subnets):  # the VRRP ports sit on the main VIP's subnet
            need[subnet] = need.get(subnet, 0) + 1 + (amphorae(self.topology) if index == 0 else 0)
        return need


def at_once(parallel: int, max_creating: int | None) -> int:
    return max(1, min(parallel, max_creating) if max_creating else parallel)


def subnet_shortfalls(
    needs: Sequence[CloneNeed], free: dict[str, int | None], in_flight: int
) -> dict[str, tuple[int, int, int]]:
    """Subnet -> (free addresses, addresses the in-flight clones need, clones that fit at once), for every
    subnet where ``in_flight`` clones at once would not fit. A subnet whose free count is unknown is skipped."""
    short: dict[str, tuple[int, int, int]] = {}
    per_subnet: dict[str, list[int]] = {}
    for need in needs:
        for subnet, n in need.addresses().items():
            per_subnet.setdefault(subnet, []).append(n)
    for subnet, amounts in per_subnet.items():
        have = free.get(subnet)
        if have is None:
            continue
        biggest = sorted(amounts, reverse=True)[: max(in_flight, 1)]
        wanted = sum(biggest)
        if have < wanted:
            fits, used = 0, 0
            for n in sorted(amounts):
                if used + n > have:
                    break
                fits, used = fits + 1, used + n
            short[subnet] = (have, wanted, fits)
    return short
