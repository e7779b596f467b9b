"""Fault and crash injection: which call fails, how, and the operator's ``lbswap fake faults`` settings.

``fail_at=N`` counts every API call; at call N the call raises a 500 (``error``), or takes effect and then
raises ``CloudTimeout`` (``timeout``), or the next provisioning transition at or after call N ends in
``ERROR`` (``error-status``). ``fail_probability`` does the same at random (seeded). ``crash_at=N``: the
process exits with status 137 right after the Nth side-effecting call took effect.
``read_error_probability``: each read call (never a side effect) fails with a transient 503 (seeded), so that
read retries can be tested. ``fip_lag``: a floating IP's data plane follows a move this many simulated seconds
after the API answered (the modeled probe meets the port it left until then; neutron.dataplane_port).
"""

from __future__ import annotations

import os
import random
from typing import Any

from lbswap.clouds.fake.store import Session, fixed_ips
from lbswap.errors import ConfigError

SIDE_EFFECTS = frozenset(
    {
        "create_load_balancer",
        "delete_load_balancer",
        "rename_load_balancer",
        "failover_load_balancer",
        "failover_amphora",
        "move_floating_ip",
        "create_floating_ip",
        "delete_floating_ip",
    }
)
EXIT_CRASH = 137
FAIL_KINDS = ("error", "timeout", "error-status")


def due_fault(state: Session, rng: random.Random) -> str | None:
    """The fault (a FAIL_KINDS value) that the current call (``state["calls"]``) meets, if any."""
    faults = state["faults"]
    kind = faults.get("fail_kind", "error")
    if faults.get("fail_at") == state["calls"]:
        return str(kind)
    probability = faults.get("fail_probability")
    if probability:
        rng.seed(f"{faults.get('seed', 0)}:{state['calls']}")
        if rng.random() < float(probability):
            return str(kind)
    return None


def read_fails(state: Session, rng: random.Random) -> bool:
    """Whether the current call, a read, meets a transient 503 (its own seeded stream, apart from due_fault)."""
    probability = state["faults"].get("read_error_probability")
    if not probability:
        return False
    rng.seed(f"read:{state['faults'].get('seed', 0)}:{state['calls']}")
    return rng.random() < float(probability)


def set_faults(
    path: str | os.PathLike[str],
    *,
    latency: float | None = None,
    fail_at: int | None = None,
    fail_kind: str = "error",
    fail_probability: float | None = None,
    crash_at: int | None = None,
    drain_seconds: float | None = None,
    read_error_probability: float | None = None,
    subnet_free: dict[str, int] | None = None,
    fip_lag: float | None = None,
    seed: int = 0,
) -> None:
    """Configure faults (counted from now: the call and side-effect counters restart at 0).

    :raises ConfigError: a probability outside [0, 1], a negative ``fip_lag``, or no simulated cloud at ``path``.
    """
    from lbswap.clouds.fake.cloud import FakeCloud

    for option, probability in (("--fail-probability", fail_probability), ("--fail-reads", read_error_probability)):
        if probability is not None and not 0.0 <= probability <= 1.0:
            raise ConfigError(f"{option} is a probability: between 0 and 1, not {probability}")
    if fip_lag is not None and not 0.0 <= fip_lag < float("inf"):
        raise ConfigError(f"--fip-lag is a number of seconds, 0 or more, not {fip_lag}")

    def apply(state: dict[str, Any]) -> None:
        if latency is not None:
            state["latency"] = latency
        if drain_seconds is not None:
            state["drain_seconds"] = drain_seconds
        if fip_lag is not None:
            state["fip_lag"] = fip_lag
        faults: dict[str, Any] = {"fail_kind": fail_kind, "seed": seed}
        if fail_at is not None:
            faults["fail_at"] = fail_at
        if fail_probability is not None:
            faults["fail_probability"] = fail_probability
        if crash_at is not None:
            faults["crash_at"] = crash_at
        if read_error_probability is not None:
            faults["read_error_probability"] = read_error_probability
        state["faults"] = faults
        for subnet_id, free in (subnet_free or {}).items():  # from now on, this many addresses are left
            if subnet_id not in state["subnets"]:
                raise ConfigError(f"--subnet-free: no subnet {subnet_id} in this simulated cloud")
            used = sum(1 for port in state["ports"].values() for s, _ip in fixed_ips(port) if s == subnet_id)
            state["subnets"][subnet_id]["capacity"] = used + int(state["subnets"][subnet_id].get("reserved", 0)) + free
        state["calls"] = 0
        state["side_effects"] = 0

    FakeCloud(path).mutate(apply)


def clear_faults(path: str | os.PathLike[str]) -> None:
    from lbswap.clouds.fake.cloud import FakeCloud

    FakeCloud(path).mutate(lambda state: state.update(faults={}))
