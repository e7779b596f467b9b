"""What a plan is made of: the options, the facts read from the cloud, the findings and the plan. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from lbswap.clone import TargetChanges
from lbswap.model import Flavor, LBSummary, LoadBalancer, Provider, QuotaUsage, StackResource
from lbswap.planning.addresses import Address
from lbswap.planning.owners import Owner

DOWNTIME = {
    "fip-swap": "none: new connections move to the clone at the flip; established ones drain on the source",
    "failover-ACTIVE_STANDBY": "no outage expected: the standby is rebuilt first, then the master; "
    "connections held by the rebuilt master are cut",
    "failover-SINGLE": "outage while the amphora is rebuilt (on Octavia typically 30-120 s); all connections cut",
    "recreate": "outage from the delete of the source until the new load balancer is ACTIVE (minutes); "
    "all connections cut",
}


@dataclass(frozen=True)
class PlanOptions:
    strategy: str = "auto"
    target: TargetChanges = field(default_factory=TargetChanges)
    target_flavor: str | None = None
    allow_downtime: bool = False
    image_tag: str = "amphora"
    parallel: int = 1
    accept_address_change: bool = False
    owned_tags: tuple[str, ...] = ()
    allow_owned: tuple[str, ...] = ()
    max_creating: int | None = None
    image_owner: str | None = None
    force: bool = False
    repair: bool = False
    # what the verify and the watch of a fip-swap will do (planning/checks.py); the same options as the run's
    verify: bool = True
    verify_path: str = "/"
    verify_host: str | None = None
    verify_udp_payload: str | None = None
    watch: float = 60.0
    watch_max_errors: int = 2


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    blocking: bool


@dataclass(frozen=True)
class CheckPlan:
    """What the verify before the flip and the watch after it will do (planning/checks.py)."""

    verify: bool = False  # whether the verify runs (else ``verify_detail`` says why not)
    verify_detail: str = ""
    listeners: tuple[tuple[str, str], ...] = ()  # (listener, what the verify sends it)
    watch_seconds: float = 0.0
    watch_detail: str = ""


@dataclass(frozen=True)
class LBPlan:
    lb_id: str
    lb_name: str
    strategy: str | None
    downtime: str
    findings: tuple[Finding, ...]
    target: TargetChanges = field(default_factory=TargetChanges)
    kubernetes: bool = False
    topology: str = "SINGLE"
    addresses: tuple[Address, ...] = ()
    owners: tuple[Owner, ...] = ()
    checks: CheckPlan = field(default_factory=CheckPlan)

    @property
    def blocking(self) -> bool:
        return any(f.blocking for f in self.findings)


@dataclass(frozen=True)
class Facts:
    """Everything the rules look at, read from the cloud in one place."""

    lb: LoadBalancer
    quota: QuotaUsage
    subnet_free: dict[str, int | None]
    unreadable_refs: tuple[str, ...]
    provider: Provider | None
    target_flavor: Flavor | None = None
    target_flavor_missing: str | None = None
    existing_clones: tuple[LBSummary, ...] = ()
    newest_image: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: for a load balancer lbswap made as a clone: whether its source still exists (its swap is unfinished)
    clone_source_exists: bool = False
    stacks: tuple[StackResource, ...] = ()


def who(lb: LoadBalancer) -> str:
    return f"load balancer {lb.name or '(no name)'} ({lb.id})"
