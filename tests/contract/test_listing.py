"""Listing load balancers by tag, on every backend: what the campaign's status watcher reads its clones with
(one list call per interval, clouds/watch.py), and the watcher itself over the backend."""

from __future__ import annotations

from lbswap.clouds.watch import StatusWatcher
from lbswap.model import MARKER_CAMPAIGN, MARKER_CLONE_OF
from tests.contract.harness import Harness, unique


def test_a_listing_by_tags_shows_only_those_carrying_every_tag(contract_cloud: Harness) -> None:
    h = contract_cloud
    campaign = MARKER_CAMPAIGN + unique("c")  # lbswap's marker tags hold ':' and '='
    tagged = h.create_active(h.small_body(unique("tagged"), tags=["contract", campaign, MARKER_CLONE_OF + "x"]))
    other = h.create_active(h.small_body(unique("other")))
    assert [lb.id for lb in h.cloud.list_load_balancers(tags=[campaign])] == [tagged]
    assert [lb.id for lb in h.cloud.list_load_balancers(tags=[campaign, "contract"])] == [tagged]
    assert h.cloud.list_load_balancers(tags=[campaign, "absent"]) == []
    both = {lb.id for lb in h.cloud.list_load_balancers(tags=["contract"], project_id=h.project_id)}
    assert both == {tagged, other}
    assert {lb.id for lb in h.cloud.list_load_balancers(project_id=h.project_id)} == {tagged, other}


def test_a_listing_by_tags_any_shows_those_carrying_one_of_them_and_every_tag(contract_cloud: Harness) -> None:
    """What the status watcher narrows its listing with: the campaign's marker (tags) and the clone-of markers
    of the clones waited on (tags-any, Octavia's own filter), so that a finished clone is not listed."""
    h = contract_cloud
    campaign = MARKER_CAMPAIGN + unique("c")
    of = [MARKER_CLONE_OF + unique("s") for _ in range(3)]
    ids = [h.create_active(h.small_body(unique("clone"), tags=["contract", campaign, tag])) for tag in of]
    elsewhere = h.create_active(h.small_body(unique("other-campaign"), tags=["contract", of[0]]))
    listed = h.cloud.list_load_balancers(tags=[campaign], tags_any=[of[0], of[2]])
    assert sorted(lb.id for lb in listed) == sorted([ids[0], ids[2]])
    assert {lb.id for lb in h.cloud.list_load_balancers(tags_any=[of[0]], project_id=h.project_id)} == {
        ids[0],
        elsewhere,
    }
    assert h.cloud.list_load_balancers(tags=[campaign], tags_any=[MARKER_CLONE_OF + "absent"]) == []


def test_the_status_watcher_sees_a_tagged_load_balancer_turn_active(contract_cloud: Harness) -> None:
    h = contract_cloud
    tags = [MARKER_CAMPAIGN + unique("c")]
    lb = h.cloud.create_load_balancer(h.small_body(unique("watched"), tags=["contract", *tags]))
    watcher = StatusWatcher(h.cloud, tags=tags, interval=0.5)
    seen: list[str] = []
    for summary in watcher.statuses(lb.id, h.timeout):
        if not seen or seen[-1] != summary.provisioning_status:
            seen.append(summary.provisioning_status)
        if summary.provisioning_status == "ACTIVE":
            break
    assert seen == ["PENDING_CREATE", "ACTIVE"] or seen == ["ACTIVE"], seen
    assert watcher.waiting() == 0
