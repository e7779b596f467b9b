"""Validation of a fully-populated create body for the local cloud (what Octavia's API checks, for the
protocols and algorithms haproxy serves here): pools named and defined once, references resolved by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lbswap.clouds.local import state as st
from lbswap.errors import CloudError


def _bad(message: str) -> CloudError:
    return CloudError(f"Validation failure: {message}", status_code=400)


def listeners_and_pools(
    state: dict[str, Any], body: dict[str, Any], protocols: Sequence[str], algorithms: Sequence[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    pools, names = [], {}
    for pool_body in body.get("pools", []):
        name = pool_body.get("name")
        if not name:
            raise _bad("pools in a fully-populated create must be named")
        if name in names:
            raise _bad(f"pool name {name} is defined twice")
        if pool_body.get("protocol") not in protocols:
            raise _bad(f"the local cloud does not serve pool protocol {pool_body.get('protocol')}")
        if pool_body.get("lb_algorithm") not in algorithms:
            raise _bad(f"the provider does not support lb_algorithm {pool_body.get('lb_algorithm')}")
        if pool_body.get("tls_enabled"):
            raise _bad("TLS to members is not supported by the local cloud")
        pool = {k: v for k, v in pool_body.items() if k not in ("members", "healthmonitor")}
        pool["id"] = st.new_id(state)
        pool["members"] = [
            {**m, "id": st.new_id(state), "operating_status": "OFFLINE"} for m in pool_body.get("members", [])
        ]
        if pool_body.get("healthmonitor"):
            monitor = pool_body["healthmonitor"]
            if monitor.get("type") not in ("HTTP", "TCP", "PING"):
                raise _bad(f"health monitor type {monitor.get('type')} is not supported by the local cloud")
            pool["healthmonitor"] = {**monitor, "id": st.new_id(state)}
        names[name] = pool["id"]
        pools.append(pool)
    listeners = []
    ports = set()
    for listener_body in body.get("listeners", []):
        if listener_body.get("protocol") not in protocols:
            raise _bad(f"the local cloud does not serve listener protocol {listener_body.get('protocol')}")
        port = listener_body.get("protocol_port")
        if not isinstance(port, int) or port in ports:
            raise _bad(f"listener port {port} is missing or used twice")
        ports.add(port)
        if listener_body.get("l7policies"):
            raise _bad("L7 policies are not supported by the local cloud")
        listener = {k: v for k, v in listener_body.items() if k not in ("default_pool", "l7policies")}
        listener["id"] = st.new_id(state)
        listener["default_pool_id"] = _pool_ref(names, listener_body.get("default_pool"))
        listener["l7policies"] = []
        listeners.append(listener)
    return listeners, pools


def _pool_ref(names: dict[str, str], ref: Any) -> str | None:
    if ref is None:
        return None
    name = ref.get("name") if isinstance(ref, dict) else None
    if name not in names:
        raise _bad(f"pool {name!r} is referenced but not defined in the body")
    return names[name]
