"""flows.build: which steps a swap runs, in order, per strategy and phase. Resume matches taskflow atoms by
these names, so they are pinned here."""

from __future__ import annotations

from typing import Any, cast

import pytest

from lbswap.clouds.base import Cloud
from lbswap.workflow import flows
from lbswap.workflow.tasks import SwapContext, SwapOptions


def ctx(kubernetes: bool = False) -> SwapContext:
    # building a flow only composes steps: no step reads the cloud before it runs
    return SwapContext(
        cloud=cast(Cloud, object()),
        campaign_id="camp",
        lb_id="lb-1",
        lb_name="web",
        options=SwapOptions(),
        kubernetes=kubernetes,
    )


def names(flow: Any) -> list[str]:
    return [atom.name for atom in flow]


MAIN_PREFIX = ["snapshot", "preflight"]
CLONE_STEPS = ["create-clone", "wait-ready", "verify", "flip", "post-flip-check", "watch", "drain"]


@pytest.mark.parametrize(
    ("strategy", "phase", "kubernetes", "steps"),
    [
        ("fip-swap", "main", False, MAIN_PREFIX + CLONE_STEPS),
        ("fip-swap", "main", True, MAIN_PREFIX + CLONE_STEPS),
        ("fip-swap", "forward", False, ["retire"]),
        ("fip-swap", "forward", True, ["retire", "rename-clone"]),
        ("failover", "main", False, MAIN_PREFIX),
        ("failover", "forward", False, ["failover"]),
        ("failover", "forward", True, ["failover"]),  # the same load balancer: nothing to rename
        ("recreate", "main", False, MAIN_PREFIX),
        ("recreate", "forward", False, ["retire", "recreate"]),
        ("recreate", "forward", True, ["retire", "recreate"]),
    ],
)
def test_build_steps_in_order(strategy: str, phase: str, kubernetes: bool, steps: list[str]) -> None:
    flow = flows.build(strategy, phase, ctx(kubernetes))
    assert flow.name == f"{strategy}-{phase}"
    assert names(flow) == steps


def test_every_step_shares_the_swap_context() -> None:
    context = ctx(kubernetes=True)
    for strategy in ("fip-swap", "failover", "recreate"):
        for phase in ("main", "forward"):
            assert all(atom.ctx is context for atom in flows.build(strategy, phase, context))


def test_the_outputs_resume_reads_are_provided_by_the_named_steps() -> None:
    main = {atom.name: atom for atom in flows.build("fip-swap", "main", ctx())}
    assert flows.SNAPSHOT_STEP == "snapshot"
    assert flows.SOURCE in main[flows.SNAPSHOT_STEP].provides
    assert flows.CLONE_ID in main["create-clone"].provides
    (_retire, recreate) = flows.build("recreate", "forward", ctx())
    assert flows.RECREATED_ID in recreate.provides


def test_an_unknown_strategy_raises_for_the_forward_phase() -> None:
    with pytest.raises(ValueError, match="unknown strategy bogus"):
        flows.build("bogus", "forward", ctx())


def test_an_unknown_strategy_raises_for_the_main_phase() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        flows.build("bogus", "main", ctx())
