"""The local cloud's names and image lookup (tier 1: no cloud needed)."""

from __future__ import annotations

import pytest

from lbswap.localcloud.names import external_veth_name, find_image, host_veth_name, netns_name

NET = "3c4bb679-e3c7-408e-8115-9da6049264b6"
CATALOG = [
    {"id": "old", "tags": ["amphora"], "owner": "ops", "status": "active", "created_at": "2026-01-01T00:00:00Z"},
    {"id": "new", "tags": ["amphora"], "owner": "ops", "status": "active", "created_at": "2026-02-01T00:00:00Z"},
    {"id": "queued", "tags": ["amphora"], "owner": "ops", "status": "queued", "created_at": "2026-03-01T00:00:00Z"},
    {"id": "other", "tags": ["amphora"], "owner": "dev", "status": "active", "created_at": "2026-04-01T00:00:00Z"},
    {"id": "untagged", "tags": [], "owner": "ops", "status": "active", "created_at": "2026-05-01T00:00:00Z"},
]


def test_interface_names_fit_the_kernel_limit_and_differ_by_kind() -> None:
    assert external_veth_name(NET) == "lcx3c4bb679e3c"
    assert host_veth_name(NET) == "lcp3c4bb679e3c"
    assert all(len(name) <= 15 for name in (external_veth_name(NET), host_veth_name(NET)))
    assert netns_name(NET) == f"lcamp-{NET}"


def test_newest_active_image_with_the_tag_and_owner() -> None:
    assert find_image(CATALOG, "amphora", "ops")["id"] == "new"  # not the queued one, nor another owner's
    assert find_image(CATALOG, "amphora", None)["id"] == "other"


def test_no_matching_image_is_an_error() -> None:
    with pytest.raises(LookupError, match="tag 'missing'"):
        find_image(CATALOG, "missing", None)
    with pytest.raises(LookupError):
        find_image(CATALOG, "amphora", "nobody")
