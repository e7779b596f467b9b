"""One fip-swap on the real Octavia and Neutron APIs (tier 2 stack), end to end, drain off.

Prints the wall time, the number of HTTP API calls and their summed time (measured on the SDK's own HTTP
session), the time spent sleeping between polls, and the ratio wall / API (the goal is <= 1.2). Run once
with the default poll backoff (1 s initial) and once with a short one, side by side. Needs the stack:

    bash scripts/setup-openstack.sh && bash scripts/openstack-stack.sh start
    OS_CLIENT_CONFIG_FILE=/opt/lbswap-stack/clouds.yaml .venv/bin/python bench/bench_openstack_swap.py
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.clouds.openstack_stack

from lbswap.clouds.openstack import OpenStackCloud
from lbswap.journal import Journal
from lbswap.plan import PlanOptions, make_plans
from lbswap.workflow.runner import SwapOptions, run_campaign

from tests.clouds import openstack_stack as stack  # isort: skip


class SleepClock:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.slept = 0.0

    def now(self) -> float:
        return float(self.inner.now())

    def sleep(self, seconds: float) -> None:
        start = time.perf_counter()
        self.inner.sleep(seconds)
        self.slept += time.perf_counter() - start


class Measured:
    """The backend with its HTTP calls counted and timed (a response hook on the SDK's requests session)."""

    def __init__(self) -> None:
        self.cloud = OpenStackCloud(stack.CLOUD)
        self.calls = 0
        self.api = 0.0
        self._clock = SleepClock(self.cloud.clock)
        self.cloud._conn.session.session.hooks["response"].append(self._hook)

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        self.api += response.elapsed.total_seconds()

    @property
    def clock(self) -> SleepClock:
        return self._clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cloud, name)


def one_swap(conn: Any, net: stack.Net, options: SwapOptions, label: str) -> None:
    lb = stack.create_lb(conn, stack.full_body(net, stack.unique("bench")))
    stack.add_fip(conn, net, lb["vip_port_id"])
    measured = Measured()
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "journal.sqlite")
        start = time.perf_counter()
        plans = make_plans(measured, [lb["id"]], PlanOptions())  # type: ignore[arg-type]
        result = run_campaign(measured, journal, plans, options)  # type: ignore[arg-type]
        wall = time.perf_counter() - start
    swap = result.swaps[0]
    steps = " ".join(f"{name}={v['seconds']:.2f}" for name, v in swap.steps.items())
    print(f"{label}: state={swap.state}")
    print(
        f"  wall {wall:.2f} s, API calls {measured.calls}, API time {measured.api:.2f} s, "
        f"slept {measured.clock.slept:.2f} s"
    )
    print(
        f"  wall / API = {wall / max(measured.api, 1e-9):.2f} (goal <= 1.2); wall / (API + sleep) = "
        f"{wall / max(measured.api + measured.clock.slept, 1e-9):.2f}"
    )
    print(f"  steps (s): {steps}")


def main() -> None:
    warnings.simplefilter("ignore")  # openstacksdk's own deprecation chatter
    conn = stack.connect()
    net = stack.ensure_network(conn)
    one_swap(conn, net, SwapOptions(drain_timeout=0), "default backoff (poll_initial 1 s)")
    one_swap(conn, net, SwapOptions(drain_timeout=0, poll_initial=0.2, poll_max=1.0), "short backoff (0.2 s)")


if __name__ == "__main__":
    main()
