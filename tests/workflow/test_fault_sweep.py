"""Fault sweep: an API error, a timeout and an ERROR status at every call of a swap, for each strategy.

Each run must end done or cleanly rolled back (never half-way), with I1-I7 holding, and a failure message
that names the load balancer and the step.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow.scenario import run_with_fault, scenario, template

KINDS = ("error", "timeout", "error-status")


@pytest.fixture(scope="module")
def tmpl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    return template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="module")
def calls_per_swap(tmpl, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """How many API calls a clean swap makes, per strategy (the sweep covers each of them)."""
    counts = {}
    for strategy in ("fip-swap", "failover", "recreate"):
        _before, after, result = run_with_fault(scenario(tmpl, tmp_path_factory.mktemp(strategy), strategy))
        assert result.swaps[0].state == "done"
        counts[strategy] = after["calls"]
    return counts


@pytest.mark.parametrize("strategy", ["fip-swap", "failover", "recreate"])
@pytest.mark.parametrize("kind", KINDS)
def test_fault_at_every_call(tmpl, calls_per_swap, tmp_path: Path, strategy: str, kind: str) -> None:
    outcomes: dict[str, int] = {}
    for n in range(1, calls_per_swap[strategy] + 1):
        _before, _after, result = run_with_fault(scenario(tmpl, tmp_path / str(n), strategy), fail_at=n, fail_kind=kind)
        swap = result.swaps[0]
        outcomes[swap.state] = outcomes.get(swap.state, 0) + 1
        if swap.state == "rolled_back":
            assert swap.name in (swap.error or "") and "step " in (swap.error or ""), swap.error
    # the sweep reached both outcomes where a fault can cost the swap
    assert outcomes.get("done", 0) > 0
    if strategy == "fip-swap" and kind == "error":
        assert outcomes.get("rolled_back", 0) > 0, outcomes
