"""Names in the local cloud that its compute driver, scripts/local-cloud.sh and the tests share, and the image
catalog's lookup. Plain functions: no Octavia import, so lbswap's own tests can check them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def netns_name(compute_id: str) -> str:
    """The network namespace of a server."""
    return f"lcamp-{compute_id}"


def host_veth_name(port_id: str) -> str:
    """The host's end of the veth that plugs a Neutron port (an interface name: 15 characters at most)."""
    return "lcp" + port_id.replace("-", "")[:11]


def external_veth_name(token: str) -> str:
    """The host's end of a veth on the external bridge (no Neutron port: the upstream side), from a hex token."""
    return "lcx" + token.replace("-", "")[:11]


def find_image(catalog: Iterable[Mapping[str, Any]], tag: str | None, owner: str | None) -> Mapping[str, Any]:
    """The newest active image with the tag (and the owner, when given), as Octavia's Glance lookup answers.

    Raises LookupError when none matches."""
    found = [
        img
        for img in catalog
        if img.get("status", "active") == "active"
        and (not tag or tag in img.get("tags", []))
        and (not owner or img.get("owner") == owner)
    ]
    if not found:
        raise LookupError(f"no active image with tag {tag!r} and owner {owner!r}")
    return max(found, key=lambda img: str(img.get("created_at", "")))
