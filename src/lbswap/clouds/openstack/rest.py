"""The raw JSON of Octavia's and Neutron's APIs through the SDK's proxies (keystoneauth sessions: auth,
endpoints, request ids), and the few reads every part of the backend caches for the life of the process."""

from __future__ import annotations

import logging
from typing import Any

from lbswap.clouds.openstack.api import LB, api_errors, server_time, topology_of
from lbswap.errors import CloudError


class Rest:
    """What the backend's parts share: the connection, calls returning JSON, and the cached reads."""

    _conn: Any
    _services: dict[str, bool]
    _profiles: dict[str, tuple[str | None, str | None]]
    _subnet_networks: dict[str, str]  # subnet id -> network id, from load balancers read (it never changes)

    def _call(self, service: str, method: str, url: str, what: str, **kwargs: Any) -> Any:
        return self._dated_call(service, method, url, what, **kwargs)[0]

    def _dated_call(self, service: str, method: str, url: str, what: str, **kwargs: Any) -> tuple[Any, float | None]:
        """The JSON of one call and the server's clock when it answered (the Date header)."""
        from openstack import exceptions as sdk

        with api_errors(what):  # also the proxy: building it discovers the endpoint, which can fail
            response = getattr(self._conn, service).request(url, method, raise_exc=False, **kwargs)
            sdk.raise_from_response(response)
            return (response.json() if response.content else None), server_time(response.headers)

    def _octavia(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        return self._call("load_balancer", method, path, what, **kwargs)

    def _neutron(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        return self._call("network", method, path, what, **kwargs)

    def _list(self, path: str, key: str, what: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of an Octavia collection, following its pagination links."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        query: dict[str, Any] | None = params
        while url:
            page = self._octavia("GET", url, what, params=query)
            items += page.get(key, [])
            url = next((link["href"] for link in page.get(f"{key}_links", []) if link.get("rel") == "next"), None)
            query = None
        return items

    def _has_service(self, service_type: str) -> bool:
        if service_type not in self._services:
            quiet = logging.getLogger("openstack.config")  # it warns about every service the catalog lacks
            level = quiet.level
            quiet.setLevel(logging.ERROR)
            try:
                self._services[service_type] = bool(self._conn.has_service(service_type))
            except Exception:  # no catalog (auth_type none) and no endpoint override: the service is absent
                self._services[service_type] = False
            finally:
                quiet.setLevel(level)
        return self._services[service_type]

    def _flavor_profile(self, flavor_id: str) -> tuple[str | None, str | None]:
        """(topology, amp_image_tag) of a flavor's profile; profiles are admin-only, so (None, None) without."""
        if flavor_id not in self._profiles:
            flavor = self._octavia("GET", f"{LB}/flavors/{flavor_id}", f"flavor {flavor_id}")["flavor"]
            try:
                path = f"{LB}/flavorprofiles/{flavor['flavor_profile_id']}"
                profile = self._octavia("GET", path, f"flavor profile of {flavor_id}")["flavorprofile"]
                self._profiles[flavor_id] = topology_of(profile.get("flavor_data"))
            except CloudError as exc:
                if exc.status_code not in (403, 404):
                    raise
                self._profiles[flavor_id] = (None, None)
        return self._profiles[flavor_id]
