"""Flow factories: which steps a swap runs, per strategy and phase. They only compose steps.

A swap runs in two taskflow flows. ``main`` is reversible: when a step fails, taskflow reverts the steps
before it (flip back, then delete the clone). ``forward`` starts at the retire and is never reverted: a failure
there is retried, because the source may already be gone.
"""

from __future__ import annotations

from typing import Any

from taskflow.patterns import linear_flow

from lbswap.workflow.tasks import (
    CreateClone,
    Drain,
    FailoverAmphorae,
    Flip,
    PostFlipCheck,
    Preflight,
    Recreate,
    RenameClone,
    Retire,
    Snapshot,
    SwapContext,
    WaitReady,
)
from lbswap.workflow.verify import VerifyClone, Watch

# step outputs the runner reads back, named once (resume depends on them)
SOURCE = "source"
CLONE_ID = "clone_id"
RECREATED_ID = "recreated_id"
SNAPSHOT_STEP = "snapshot"


def build(strategy: str, phase: str, ctx: SwapContext) -> Any:
    """The flow of one phase of one swap. Names are stable: resume rebuilds the flow and taskflow matches
    its atoms by name to the states in the journal."""
    if strategy not in ("fip-swap", "failover", "recreate") or phase not in ("main", "forward"):
        raise ValueError(f"unknown strategy {strategy} or phase {phase}")
    flow = linear_flow.Flow(f"{strategy}-{phase}")
    if phase == "main":
        flow.add(Snapshot(ctx), Preflight(ctx))
        if strategy == "fip-swap":
            flow.add(CreateClone(ctx), WaitReady(ctx), VerifyClone(ctx))
            flow.add(Flip(ctx), PostFlipCheck(ctx), Watch(ctx), Drain(ctx))
        return flow
    if strategy == "fip-swap":
        flow.add(Retire(ctx))
        if ctx.kubernetes:
            flow.add(RenameClone(ctx))
    elif strategy == "failover":
        flow.add(FailoverAmphorae(ctx))
    elif strategy == "recreate":
        flow.add(Retire(ctx), Recreate(ctx))
    else:
        raise ValueError(f"unknown strategy {strategy}")
    return flow
