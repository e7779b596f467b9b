"""The reads steps share instead of repeating: the retire's I3 check is I8's re-read of the floating IPs on the
source's VIP ports (one list per port, right before the delete), and the create takes the clones the preflight
listed just before (one listing, not two), listing them itself when the preflight ran in another process."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lbswap.clouds import fake
from lbswap.errors import SwapFailed
from lbswap.model import to_json
from lbswap.workflow.tasks import CreateClone, Preflight, Retire, SwapContext, SwapOptions


class Spy:
    """The fake cloud, each call counted by name."""

    def __init__(self, cloud: fake.FakeCloud) -> None:
        self.cloud = cloud
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.cloud, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attribute(*args, **kwargs)

        return call


@pytest.fixture
def spy(tmp_path: Path) -> Spy:
    fake.seed_sample(tmp_path / "cloud.json", 1, 3)
    return Spy(fake.FakeCloud(tmp_path / "cloud.json"))


def _ctx(spy: Spy, lb_id: str, campaign: str = "c-1") -> SwapContext:
    options = SwapOptions(poll_initial=0.01, poll_max=0.01, delete_timeout=30)
    return SwapContext(cloud=spy, campaign_id=campaign, lb_id=lb_id, lb_name="web", options=options)  # type: ignore[arg-type]


def _source(spy: Spy) -> tuple[str, dict[str, Any]]:
    lb_id = spy.cloud.list_load_balancers()[0].id
    graph = spy.cloud.read_graph(lb_id)
    assert graph.floating_ips, "the sample's load balancer has a floating IP"
    return lb_id, to_json(graph)


def test_retire_refuses_on_one_list_of_the_source_ports_floating_ips(spy: Spy) -> None:
    lb_id, source = _source(spy)  # its floating IP still on it: nothing flipped
    with pytest.raises(SwapFailed, match="refusing to delete the source: floating IP"):
        Retire(_ctx(spy, lb_id)).execute(source, clone_id="clone-1")
    ports = len(spy.cloud.read_graph(lb_id).vip_port_ids())
    assert spy.calls["list_floating_ips"] == ports and spy.calls["delete_load_balancer"] == 0, spy.calls
    assert spy.calls["get_floating_ip"] == 0 and spy.calls["read_graph"] == 0, spy.calls  # no second read
    assert spy.cloud.get_load_balancer(lb_id).provisioning_status == "ACTIVE"


def test_retire_deletes_once_no_floating_ip_points_at_the_source(spy: Spy) -> None:
    lb_id, source = _source(spy)
    for fip in spy.cloud.read_graph(lb_id).floating_ips:
        spy.cloud.delete_floating_ip(fip.id)
    Retire(_ctx(spy, lb_id)).execute(source, clone_id="clone-1")
    assert spy.calls["delete_load_balancer"] == 1 and spy.calls["get_floating_ip"] == 0, spy.calls
    assert not [lb for lb in spy.cloud.list_load_balancers() if lb.id == lb_id]


def test_the_create_takes_the_preflights_listing_or_lists_itself(spy: Spy) -> None:
    lb_id, source = _source(spy)
    ctx = _ctx(spy, lb_id)
    Preflight(ctx).execute(source)
    clone_id = CreateClone(ctx).execute(source)
    assert spy.calls["list_load_balancers"] == 1 and spy.calls["create_load_balancer"] == 1, spy.calls
    # a resumed swap's create (no preflight in this process) lists the clones itself and finds its own (I6)
    again = _ctx(spy, lb_id)
    assert CreateClone(again).execute(source) == clone_id
    assert spy.calls["list_load_balancers"] == 2 and spy.calls["create_load_balancer"] == 1, spy.calls
    # the preflight still refuses a source another campaign has a clone of
    with pytest.raises(SwapFailed, match="already has a clone"):
        Preflight(_ctx(spy, lb_id, campaign="c-2")).execute(source)
