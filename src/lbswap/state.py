"""A swap's state, as the operator reads it, and the moves between states (a table, as taskflow's states.py).

    pending --> running --> done
       |           |  \\--> kept --> running (finalize) --> done
       |           |  \\--> rolled_back
       |           \\-----> failed --> running (resume retries a forward failure)
       \\--> skipped (the canary failed or the circuit breaker opened: nothing was changed)

A swap is ``rolled_back`` from ``kept`` or ``failed`` too, by ``lbswap rollback``.
"""

from __future__ import annotations

from enum import StrEnum


class SwapState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    KEPT = "kept"
    DONE = "done"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    SKIPPED = "skipped"


#: states after which nothing happens to the swap without an operator's command
TERMINAL = frozenset({SwapState.DONE, SwapState.ROLLED_BACK, SwapState.FAILED, SwapState.SKIPPED})
#: states in which a swap holds its load balancer: no other campaign may take it
HOLDING = (SwapState.PENDING, SwapState.RUNNING, SwapState.KEPT)
#: states that count against the canary and the circuit breaker
UNSUCCESSFUL = frozenset({SwapState.FAILED, SwapState.ROLLED_BACK})

S = SwapState
TRANSITIONS = frozenset(
    {
        (S.PENDING, S.RUNNING),
        (S.PENDING, S.SKIPPED),
        (S.PENDING, S.ROLLED_BACK),
        (S.RUNNING, S.RUNNING),
        (S.RUNNING, S.DONE),
        (S.RUNNING, S.KEPT),
        (S.RUNNING, S.ROLLED_BACK),
        (S.RUNNING, S.FAILED),
        (S.KEPT, S.RUNNING),
        (S.KEPT, S.ROLLED_BACK),
        (S.FAILED, S.RUNNING),
        (S.FAILED, S.FAILED),
        (S.FAILED, S.ROLLED_BACK),
    }
)


def allowed(old: str, new: str) -> bool:
    return (SwapState(old), SwapState(new)) in TRANSITIONS
