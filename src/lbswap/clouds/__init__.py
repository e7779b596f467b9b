"""Backends behind the Cloud protocol, opened from a spec string.

``fake:PATH`` (file-backed simulator), ``local[:STATE_DIR]`` (real data plane on this host),
``openstack[:CLOUD][?probe-netns=NS]`` (openstacksdk; the cloud name falls back to ``OS_CLOUD``; probe-netns: probe
listeners from inside that network namespace). Every cloud opened here retries
its reads on transient errors (:mod:`lbswap.clouds.retry`) for up to ``$LBSWAP_READ_RETRY_SECONDS`` (default 60;
0 turns retries off); ``unwrap(cloud)`` is the backend itself.
"""

from __future__ import annotations

import importlib

from lbswap.clouds.base import Clock, Cloud, SystemClock
from lbswap.clouds.retry import RetryingCloud, policy_from_env, unwrap, with_read_retries
from lbswap.errors import ConfigError

__all__ = ["Clock", "Cloud", "RetryingCloud", "SystemClock", "open_cloud", "unwrap", "with_read_retries"]

# backend kind -> (module, class); imported lazily so that a backend's dependencies load only when used.
BACKENDS = {
    "fake": ("lbswap.clouds.fake", "FakeCloud"),
    "local": ("lbswap.clouds.local", "LocalCloud"),
    "openstack": ("lbswap.clouds.openstack", "OpenStackCloud"),
}


def open_cloud(spec: str) -> Cloud:
    """Open the backend a spec names, its reads retried on transient errors. Each backend's constructor takes
    the part after the colon (or None).

    :raises ConfigError: the spec names no backend, the backend's configuration is malformed, or
        ``$LBSWAP_READ_RETRY_SECONDS`` is not a number of seconds.
    """
    policy = policy_from_env()
    kind, _, arg = spec.partition(":")
    if kind not in BACKENDS:
        raise ConfigError(f"unknown backend {spec!r}: use fake:PATH, local[:STATE_DIR] or openstack[:CLOUD]")
    if kind == "fake" and not arg:
        raise ConfigError("--backend fake needs a state file: fake:PATH")
    module, cls = BACKENDS[kind]
    return with_read_retries(getattr(importlib.import_module(module), cls)(arg or None), policy=policy)
