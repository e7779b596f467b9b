"""One class per swap step, each with ``execute`` and, where the step has an effect to undo, ``revert``.

Every step is idempotent: run again after a crash it finds its earlier effect (marker tags on the clone,
the floating IP's port and revision) instead of repeating it. Steps pass plain JSON between them, so
taskflow can persist them in the journal and resume. Steps never print: they report through ``ctx.emit``.

The steps live by phase (steps_clone, steps_flip, steps_retire, steps_fallback) over what they share
(context, waits, fips); this module names them all in one place.
"""

from __future__ import annotations

from lbswap.workflow.context import CreationSlots, Step, SwapContext, SwapOptions
from lbswap.workflow.fips import flip_targets, move_back
from lbswap.workflow.steps_clone import HEALTH_RANK, CreateClone, Preflight, Snapshot, WaitReady, not_ready
from lbswap.workflow.steps_fallback import FailoverAmphorae, Recreate
from lbswap.workflow.steps_flip import Flip, PostFlipCheck
from lbswap.workflow.steps_retire import Drain, RenameClone, Retire
from lbswap.workflow.waits import (
    delete_clones,
    drain,
    find_clones,
    refuse_if_serving,
    release_temp_fips,
    temp_fip_tags,
    wait_gone,
    wait_status,
)

__all__ = [
    "HEALTH_RANK",
    "CreateClone",
    "CreationSlots",
    "Drain",
    "FailoverAmphorae",
    "Flip",
    "PostFlipCheck",
    "Preflight",
    "Recreate",
    "RenameClone",
    "Retire",
    "Snapshot",
    "Step",
    "SwapContext",
    "SwapOptions",
    "WaitReady",
    "delete_clones",
    "drain",
    "find_clones",
    "flip_targets",
    "move_back",
    "not_ready",
    "refuse_if_serving",
    "release_temp_fips",
    "temp_fip_tags",
    "wait_gone",
    "wait_status",
]
