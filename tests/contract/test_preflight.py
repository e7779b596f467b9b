"""The Cloud protocol's pre-flight reads, on every backend: quotas with every documented kind (and a create
over quota refused with nothing made), flavors and providers, images by tag newest first, a stable and
secret-free identity, stack resources and the service project's compute quota."""

from __future__ import annotations

import pytest

from lbswap.clouds import open_cloud
from lbswap.errors import NotFound, QuotaExceeded
from lbswap.model import QuotaUsage, StackResource
from tests.contract.harness import COMPUTE_KINDS, QUOTA_KINDS, Harness, unique


def test_get_quota_has_every_documented_kind(contract_cloud: Harness) -> None:
    quota = contract_cloud.cloud.get_quota(contract_cloud.fresh_project())
    assert set(QUOTA_KINDS) <= set(quota.limits), quota
    for kind in QUOTA_KINDS:
        assert quota.limits[kind] >= -1
        if quota.limits[kind] >= 0:
            assert quota.in_use.get(kind, 0) >= 0


def test_a_create_over_the_load_balancer_quota_is_refused(contract_cloud: Harness) -> None:
    h = contract_cloud
    project = h.fresh_project()
    h.set_quota(project, load_balancer=1, listener=5)
    first = h.create_active(h.small_body(unique("quota"), project_id=project))
    quota = h.cloud.get_quota(project)
    assert (quota.limits["load_balancer"], quota.in_use["load_balancer"]) == (1, 1), quota
    assert (quota.limits["listener"], quota.in_use["listener"]) == (5, 1), quota
    assert quota.free("load_balancer") == 0
    with pytest.raises(QuotaExceeded):
        h.cloud.create_load_balancer(h.small_body(unique("over"), project_id=project))
    assert [lb.id for lb in h.cloud.list_load_balancers(project_id=project)] == [first]


def test_flavors_and_providers(contract_cloud: Harness) -> None:
    h = contract_cloud
    flavor = h.cloud.get_flavor(h.flavor_ha)
    assert (flavor.id, flavor.topology, flavor.provider, flavor.enabled) == (
        h.flavor_ha,
        "ACTIVE_STANDBY",
        "amphora",
        True,
    )
    assert h.cloud.get_flavor(flavor.name) == flavor
    with pytest.raises(NotFound):
        h.cloud.get_flavor(unique("no-such-flavor"))
    amphora = h.cloud.get_provider("amphora")
    assert amphora.name == "amphora"
    with pytest.raises(NotFound):
        h.cloud.get_provider(unique("no-such-provider"))


def test_images_by_tag_newest_first(contract_cloud: Harness) -> None:
    h = contract_cloud
    tag = unique("amp")
    published = h.publish_image("amp-old", tag) and h.publish_image("amp-new", tag)
    assert h.publish_image("amp-other", unique("other")) is published
    found = h.cloud.list_images(tag)
    assert all(tag in image.tags for image in found)
    assert [i.created_at for i in found] == sorted((i.created_at for i in found), reverse=True)
    # a cloud without an image service (the tier 2 stack) has no image to list: staleness is unknown
    assert [i.name for i in found] == (["amp-new", "amp-old"] if published else [])


def test_identity_is_stable_and_secret_free(contract_cloud: Harness) -> None:
    h = contract_cloud
    identity = h.cloud.identity()
    assert identity.startswith(f"{h.cloud.kind}:")
    assert h.cloud.identity() == identity
    other = h.reopen()
    try:
        assert other.identity() == identity, "another process would see another cloud"
    finally:
        other.close()
    reopened = open_cloud(h.cloud.spec())
    try:
        assert reopened.identity() == identity, "the spec stored in the journal reaches another cloud"
    finally:
        reopened.close()
    for secret in h.secrets():
        assert secret not in identity


def test_identity_does_not_change_once_the_cloud_was_used(contract_cloud: Harness) -> None:
    """A campaign stores the identity of the process that ran it; ``resume`` compares it with that of a new
    process, which has made no call yet. They must be equal, or resume refuses the campaign's own cloud."""
    h = contract_cloud
    fresh = h.reopen()
    try:
        before = fresh.identity()
        fresh.list_load_balancers(project_id=h.project_id)
        fresh.list_floating_ips(tag=unique("none"))
        assert fresh.identity() == before
    finally:
        fresh.close()


def test_stack_resources_and_service_compute_quota_answer(contract_cloud: Harness) -> None:
    cloud = contract_cloud.cloud
    resources = cloud.list_stack_resources()
    assert isinstance(resources, list) and all(isinstance(r, StackResource) for r in resources)
    quota = cloud.service_compute_quota()
    assert quota is None or (isinstance(quota, QuotaUsage) and set(COMPUTE_KINDS) <= set(quota.limits)), quota
