"""One fip-swap on the real Octavia and Neutron APIs (tier 2 stack), end to end, drain off.

Prints the wall time, the number of HTTP API calls and their summed time (measured on the SDK's own HTTP
session), the time spent sleeping between polls, and the ratio wall / API (the goal is <= 1.2); the API calls
per swap (plan included) side by side with the counts before (``CALLS_BEFORE``: this bench run on commit
7f06fd4, before the status watcher and the amphorae's reuse; ``CALLS_PREVIOUS``: on de2bfc8) and the goal (<= 40),
the status watcher's lists among them (they depend on how long the clone takes to build), and the calls by
endpoint.
The SDK's endpoint discovery (once per process, whatever the number of swaps) is made before counting and
printed apart. Runs the full one with the default poll backoff (1 s initial) and with a short one, then the
small one.
The source is left to settle first (its last change older than the backend's graph_settle), as a fleet's
load balancers are: a graph read within seconds of a change is never reused. Needs the stack:

    bash scripts/setup-openstack.sh && bash scripts/openstack-stack.sh start
    OS_CLIENT_CONFIG_FILE=/opt/lbswap-stack/clouds.yaml .venv/bin/python bench/bench_openstack_swap.py
"""

from __future__ import annotations

import collections
import re
import sys
import tempfile
import time
import urllib.parse
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.clouds.openstack_stack

from lbswap.clouds.openstack import GRAPH_SETTLE, OpenStackCloud
from lbswap.journal import Journal
from lbswap.model import MARKER_CAMPAIGN
from lbswap.plan import PlanOptions, make_plans
from lbswap.workflow.runner import SwapOptions, run_campaign

from tests.clouds import openstack_stack as stack  # isort: skip

#: API calls of one fip-swap on commit 7f06fd4 (each swap polling its own clone, amphorae read every time), per
#: body, counted as here (endpoint discovery apart); the polls in them vary by about 3 with the machine's load
CALLS_BEFORE = {"full": 66, "small": 50}
#: the same on commit de2bfc8 (status watcher, amphorae reused), before retire's floating IP reads became one list
#: and the preflight's clone listing served the create
CALLS_PREVIOUS = {"full": 61, "small": 44}
CALLS_GOAL = 40
BODIES = {"full": stack.full_body, "small": stack.small_body}
UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")


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
        self.by_call: collections.Counter[str] = collections.Counter()
        self.watcher_lists = 0  # the campaign's status watcher: one list per interval, whatever the swaps waiting
        self.api = 0.0
        self._clock = SleepClock(self.cloud.clock)
        self.cloud._conn.session.session.hooks["response"].append(self._hook)
        # the SDK discovers each service's endpoint once per process: not part of any one swap
        self.cloud.list_load_balancers(project_id="warm-up")
        self.cloud.list_floating_ips(tag="warm-up")
        self.discovery = self.calls - 2
        self.calls, self.api = 0, 0.0
        self.by_call.clear()
        self.watcher_lists = 0

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        self.api += response.elapsed.total_seconds()
        url = urllib.parse.urlsplit(response.request.url)
        path = UUID.sub("{id}", url.path)
        self.by_call[f"{response.request.method} {path}"] += 1
        if path.endswith("/lbaas/loadbalancers") and MARKER_CAMPAIGN in urllib.parse.unquote(url.query):
            self.watcher_lists += 1

    @property
    def clock(self) -> SleepClock:
        return self._clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cloud, name)


def one_swap(conn: Any, net: stack.Net, options: SwapOptions, label: str, body: str = "full") -> None:
    lb = stack.create_lb(conn, BODIES[body](net, stack.unique("bench")))
    stack.add_fip(conn, net, lb["vip_port_id"])
    time.sleep(GRAPH_SETTLE + 1.5)  # settled, like a fleet's load balancers (see the module doc)
    measured = Measured()
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "journal.sqlite")
        start = time.perf_counter()
        plans = make_plans(measured, [lb["id"]], PlanOptions())  # type: ignore[arg-type]
        result = run_campaign(measured, journal, plans, options)  # type: ignore[arg-type]
        wall = time.perf_counter() - start
    swap = result.swaps[0]
    steps = " ".join(f"{name}={v['seconds']:.2f}" for name, v in swap.steps.items())
    print(f"{label}, {body} load balancer: state={swap.state}")
    print(
        f"  wall {wall:.2f} s, API calls {measured.calls}, API time {measured.api:.2f} s, "
        f"slept {measured.clock.slept:.2f} s"
    )
    print(
        f"  wall / API = {wall / max(measured.api, 1e-9):.2f} (goal <= 1.2); wall / (API + sleep) = "
        f"{wall / max(measured.api + measured.clock.slept, 1e-9):.2f}"
    )
    print(f"  steps (s): {steps}")
    default = options.poll_initial == SwapOptions().poll_initial
    before = f"{CALLS_BEFORE[body]:>3} (7f06fd4), {CALLS_PREVIOUS[body]:>3} (de2bfc8)" if default else "n/a"
    print(f"  API calls per swap (plan included): before {before}   now {measured.calls:>3}   goal <= {CALLS_GOAL}")
    print(
        f"  (of which {measured.watcher_lists} the status watcher's lists while the clone built: one per 2 s for the "
        "whole campaign, however many swaps wait; more when the machine is slow)"
    )
    print(f"  (and {measured.discovery} for the SDK's endpoint discovery, once per process)")
    for call, count in sorted(measured.by_call.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"    {count:3d}  {call}")


def main() -> None:
    warnings.simplefilter("ignore")  # openstacksdk's own deprecation chatter
    conn = stack.connect()
    net = stack.ensure_network(conn)
    quiet = {"drain_timeout": 0, "verify": False, "watch": 0}  # no probes towards the stack's floating IPs
    one_swap(conn, net, SwapOptions(**quiet), "default backoff (poll_initial 1 s)")
    one_swap(conn, net, SwapOptions(**quiet, poll_initial=0.2, poll_max=1.0), "short backoff (0.2 s)")
    one_swap(conn, net, SwapOptions(**quiet), "default backoff (poll_initial 1 s)", "small")


if __name__ == "__main__":
    main()
