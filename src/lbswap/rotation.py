"""Why rotate a load balancer's amphorae, and which image is the newest for it, as Octavia picks it. Pure
except :class:`ImageCatalog`, which reads the cloud once per tag and flavor.

Reasons: an older image than the newest with the image tag Octavia would use (the flavor profile's
``amp_image_tag``, else ``--image-tag``; only images of ``--image-owner`` when given, as ``amp_image_owner_id``
does), an amphora older than N days, a certificate expiring within N days, ``--force`` (after a CA or
heartbeat-key change every amphora must go), and ``--repair`` (a load balancer in ERROR).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from lbswap.clouds.base import Cloud
from lbswap.errors import NotFound
from lbswap.model import Amphora, Image, LBSummary

DAY = 86400.0


@dataclass(frozen=True)
class Criteria:
    stale_image: bool = False
    older_than_days: float | None = None
    cert_expiring_within_days: float | None = None
    force: bool = False
    repair: bool = False

    @property
    def any(self) -> bool:
        return bool(
            self.stale_image
            or self.older_than_days is not None
            or self.cert_expiring_within_days is not None
            or self.force
            or self.repair
        )


def epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # Octavia's timestamps are UTC
    return moment.timestamp()


def age_days(amphora: Amphora, now: float) -> float | None:
    created = epoch(amphora.created_at)
    return None if created is None else (now - created) / DAY


def cert_days_left(amphora: Amphora, now: float) -> float | None:
    expires = epoch(amphora.cert_expiration)
    return None if expires is None else (expires - now) / DAY


def reasons(
    lb: LBSummary, amphorae: Sequence[Amphora], newest: str | None, criteria: Criteria, now: float
) -> list[str]:
    """Why this load balancer should be rotated under ``criteria`` (empty: it should not)."""
    why = []
    if criteria.repair and lb.provisioning_status == "ERROR":
        why.append("in ERROR: repair by failover")
    if criteria.force:
        why.append("forced (--force)")
    if criteria.stale_image and newest and any(a.image_id != newest for a in amphorae):
        why.append(f"an amphora is not on the newest image {newest}")
    if criteria.older_than_days is not None:
        ages = [d for d in (age_days(a, now) for a in amphorae) if d is not None]
        if ages and max(ages) >= criteria.older_than_days:
            why.append(f"an amphora is {max(ages):.0f} days old (--older-than {criteria.older_than_days:g})")
    if criteria.cert_expiring_within_days is not None:
        left = [d for d in (cert_days_left(a, now) for a in amphorae) if d is not None]
        if left and min(left) <= criteria.cert_expiring_within_days:
            why.append(f"an amphora certificate expires in {min(left):.0f} days")
    return why


class ImageCatalog:
    """The newest amphora image per load balancer, with the tag Octavia would boot it with."""

    def __init__(self, cloud: Cloud, default_tag: str, owner: str | None = None) -> None:
        self.cloud = cloud
        self.default_tag = default_tag
        self.owner = owner
        self._by_tag: dict[str, list[Image]] = {}
        self._flavor_tag: dict[str, str | None] = {}

    def tag_for(self, flavor_id: str | None) -> str:
        if not flavor_id:
            return self.default_tag
        if flavor_id not in self._flavor_tag:
            try:
                self._flavor_tag[flavor_id] = self.cloud.get_flavor(flavor_id).amp_image_tag
            except NotFound:
                self._flavor_tag[flavor_id] = None
        return self._flavor_tag[flavor_id] or self.default_tag

    def images(self, tag: str) -> list[Image]:
        if tag not in self._by_tag:
            found = self.cloud.list_images(tag)
            self._by_tag[tag] = [i for i in found if not self.owner or i.owner == self.owner]
        return self._by_tag[tag]

    def newest(self, flavor_id: str | None) -> Image | None:
        images = self.images(self.tag_for(flavor_id))
        return images[0] if images else None
