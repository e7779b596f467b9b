"""The pre-flight reads of the ``openstack`` backend: quotas and usage, free addresses, secrets, flavors,
providers, orchestration stacks and amphora images."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from lbswap.clouds.openstack.api import LB, OCTAVIA_QUOTAS, PROVIDER_LIMITS, api_errors, quota_limit, to_model
from lbswap.clouds.openstack.rest import Rest
from lbswap.errors import CloudError, NotFound
from lbswap.model import Flavor, Image, Provider, QuotaUsage, StackResource

LOG = logging.getLogger(__name__)


class Preflight(Rest):
    """What the plan checks before a swap."""

    _providers: set[str]  # Octavia's provider names, as last listed

    def get_quota(self, project_id: str) -> QuotaUsage:
        quota = self._octavia("GET", f"{LB}/quotas/{project_id}", "quota")["quota"]
        limits = {
            kind: quota_limit(next((quota[n] for n in names if quota.get(n) is not None), None))
            for kind, names in OCTAVIA_QUOTAS.items()
        }
        in_use = self._octavia_usage(project_id, [k for k, v in limits.items() if v >= 0])
        with contextlib.suppress(CloudError):  # Neutron's quota details extension may be absent
            details = self._neutron("GET", f"/quotas/{project_id}/details.json", "network quota")["quota"]
            for kind in ("port", "floatingip"):
                limits[kind] = quota_limit(details[kind]["limit"])
                in_use[kind] = int(details[kind]["used"])
        return QuotaUsage(limits=limits, in_use=in_use)

    def _octavia_usage(self, project_id: str, kinds: Sequence[str]) -> dict[str, int]:
        """Octavia has no usage API: count what the project has, only for kinds that have a limit."""
        what, usage = "quota usage", {}
        if "load_balancer" in kinds:
            usage["load_balancer"] = len(
                self._list(f"{LB}/loadbalancers", "loadbalancers", what, project_id=project_id)
            )
        if "listener" in kinds:
            usage["listener"] = len(self._list(f"{LB}/listeners", "listeners", what, project_id=project_id))
        if {"pool", "member"} & set(kinds):
            pools = self._list(f"{LB}/pools", "pools", what, project_id=project_id)
            usage["pool"], usage["member"] = len(pools), sum(len(p.get("members", [])) for p in pools)
        if "health_monitor" in kinds:
            usage["health_monitor"] = len(
                self._list(f"{LB}/healthmonitors", "healthmonitors", what, project_id=project_id)
            )
        if "l7policy" in kinds:
            usage["l7policy"] = len(self._list(f"{LB}/l7policies", "l7policies", what, project_id=project_id))
        return usage

    def subnet_free_addresses(self, subnet_id: str) -> int | None:
        network = self._subnet_networks.get(subnet_id)
        if network is None:
            network = self._neutron("GET", f"/subnets/{subnet_id}", f"subnet {subnet_id}")["subnet"]["network_id"]
        try:
            path = f"/network-ip-availabilities/{network}"
            data = self._neutron("GET", path, f"IP availability of {subnet_id}")["network_ip_availability"]
        except CloudError as exc:
            LOG.debug("no IP availability for subnet %s: %s", subnet_id, exc)
            return None
        for entry in data.get("subnet_ip_availability", []):
            if entry.get("subnet_id") == subnet_id:
                return int(entry["total_ips"]) - int(entry["used_ips"])
        return None

    def can_read_secret(self, ref: str) -> bool:
        if not self._has_service("key-manager"):
            return True  # no Barbican: nothing can refuse the reference
        try:
            self._call("key_manager", "GET", ref, f"secret {ref}")
        except CloudError as exc:
            if exc.status_code in (401, 403, 404):
                return False
            raise
        return True

    def get_flavor(self, name_or_id: str) -> Flavor:
        flavors = self._list(f"{LB}/flavors", "flavors", f"flavor {name_or_id}")
        found = next((f for f in flavors if name_or_id in (f["id"], f["name"])), None)
        if found is None:
            raise NotFound(f"flavor {name_or_id} not found", status_code=404)
        topology, tag = self._flavor_profile(found["id"])
        provider = found.get("provider_name") or "amphora"
        return to_model(
            Flavor, found, provider=provider, topology=topology, amp_image_tag=tag, enabled=found.get("enabled", True)
        )

    def get_provider(self, name: str) -> Provider:
        if name not in self._providers:  # enabled in Octavia's configuration: listed once per process, not per LB
            listed = {p.get("name") for p in self._list(f"{LB}/providers", "providers", f"provider {name}")}
            self._providers = {str(n) for n in listed if n}
        if name not in self._providers:
            raise NotFound(f"provider {name} not found", status_code=404)
        if name in PROVIDER_LIMITS:
            protocols, algorithms = PROVIDER_LIMITS[name]
            return Provider(name=name, listener_protocols=protocols, lb_algorithms=algorithms)
        return Provider(name=name)

    def list_stack_resources(self) -> list[StackResource]:
        if not self._has_service("orchestration"):
            return []  # no Heat in this cloud (the tier 2 stack has none): no stack can hold a load balancer
        found = []
        with api_errors("orchestration stacks"):
            for stack in self._conn.orchestration.stacks():
                owner = "magnum" if any("magnum" in str(t).lower() for t in (stack.tags or ())) else "heat"
                for res in self._conn.orchestration.resources(stack, resource_type="OS::Octavia::LoadBalancer"):
                    found.append(StackResource(stack.id, stack.name, res.name, res.physical_resource_id or "", owner))
        return found

    def service_compute_quota(self) -> QuotaUsage | None:
        return None  # Octavia's service project is not readable to an ordinary caller: capacity unknown

    def list_images(self, tag: str) -> list[Image]:
        if not self._has_service("image"):
            return []  # no image API (the noop test stack): staleness is "unknown"
        with api_errors(f"images tagged {tag}"):
            images = [
                Image(id=i.id, name=i.name or "", tags=tuple(i.tags or ()), created_at=i.created_at or "")
                for i in self._conn.image.images(tag=tag)
            ]
        return sorted(images, key=lambda i: i.created_at, reverse=True)
