"""The flat columns of every command's rows: what ``-c COLUMN``, ``-f value`` and ``-f csv`` name.

``-f json`` and ``-f yaml`` without ``-c`` give the nested document instead (the README's schema).
"""

from __future__ import annotations

INVENTORY = (
    "id",
    "name",
    "provisioning_status",
    "operating_status",
    "topology",
    "provider",
    "vip_address",
    "floating_ips",
    "amphora_images",
    "stale_image",
    "rotate_because",
)
INVENTORY_TABLE = ("id", "name", "status", "topology", "vip", "floating ips", "amphorae (image, age, cert)", "stale")

PLAN = ("id", "name", "strategy", "downtime", "blocking", "addresses_that_change", "findings", "verify", "watch")
PLAN_TABLE = ("id", "name", "strategy", "downtime", "addresses that change", "verify and watch", "findings")

#: one row per swap of a campaign: status, run, resume, rollback, finalize
SWAPS = ("campaign_id", "id", "name", "strategy", "state", "clone_id", "floating_ips", "error")
SWAPS_TABLE = ("id", "name", "strategy", "state", "clone", "flips", "error")

RECOVERY = ("action", "source_id", "source_name", "clone_id", "campaign", "floating_ips", "reason", "error")
RECOVERY_TABLE = ("action", "source", "name", "clone", "campaign", "floating ips", "reason", "error")

REPORT = ("markdown", "json")
