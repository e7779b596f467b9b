"""What every part of the ``openstack`` backend shares: constants, the translation of foreign exceptions into
lbswap's errors (once, at the boundary), and the mapping of Octavia's and Neutron's JSON onto the model."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import email.utils
import json
import logging
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from lbswap.errors import CloudError, CloudTimeout, ConfigError, Conflict, NotFound, PreconditionFailed, QuotaExceeded
from lbswap.model import from_json

LOG = logging.getLogger(__name__)
T = TypeVar("T")

LB = "/lbaas"  # relative to the versioned endpoint the SDK discovered
VIP_PORT_PREFIX = "octavia-lb-"
#: seconds before one HTTP request counts as a timeout, unless clouds.yaml sets api_timeout
DEFAULT_API_TIMEOUT = 60.0
# What providers other than amphora support (Octavia's API does not list protocols per provider).
PROVIDER_LIMITS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ovn": (("TCP", "UDP", "SCTP"), ("SOURCE_IP_PORT",)),
}
#: seconds a load balancer's last change must precede a read of its children for them to be reused
GRAPH_SETTLE = 5.0
#: load balancers whose children are kept for reuse (least recently read dropped first)
GRAPH_CACHE_SIZE = 512
#: seconds the amphorae of an unchanged load balancer are reused (only their certificate's expiry can move
#: without the load balancer's lock: housekeeping rotates it, weeks before it expires)
AMPHORAE_REUSE = 300.0
# Octavia quota names -> lbswap's kinds; Neutron's are the same words (port, floatingip).
#: lbswap's quota kind -> the names Octavia's quota API answers with, newest first (it answers ``loadbalancer``,
#: ``healthmonitor``...; ``load_balancer`` and ``health_monitor`` are its deprecated aliases)
OCTAVIA_QUOTAS = {
    "load_balancer": ("loadbalancer", "load_balancer"),
    "listener": ("listener",),
    "pool": ("pool",),
    "member": ("member",),
    "health_monitor": ("healthmonitor", "health_monitor"),
    "l7policy": ("l7policy",),
}


def translate(exc: Exception, what: str) -> CloudError | ConfigError:
    """One foreign exception -> lbswap's error tree (status code and request id kept)."""
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions as sdk

    if isinstance(exc, ksa.AuthPluginException | ksa.MissingAuthPlugin | sdk.ConfigException):
        return ConfigError(f"cannot authenticate to the cloud: {first_line(exc)}")
    if isinstance(exc, ksa.ConnectTimeout | ksa.RequestTimeout | sdk.ResourceTimeout):
        return CloudTimeout(f"{what}: no answer in time ({type(exc).__name__})")
    status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    request_id = getattr(exc, "request_id", None)
    text = first_line(getattr(exc, "details", None) or exc)
    message = f"{what}: {text}"
    kind: type[CloudError] = CloudError
    if status == 404:
        kind = NotFound
    elif status == 412:
        kind = PreconditionFailed
    elif status in (403, 409) and "quota" in text.lower():
        kind = QuotaExceeded
    elif status == 409:
        kind = Conflict
    return kind(message, status_code=status, request_id=request_id)


def first_line(value: object) -> str:
    text = str(value).strip()
    return (text.splitlines() or [type(value).__name__])[0][:300]


@contextlib.contextmanager
def api_errors(what: str) -> Iterator[None]:
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions as sdk

    try:
        yield
    except (sdk.SDKException, ksa.ClientException) as exc:
        raise translate(exc, what) from exc


def to_model(cls: type[T], data: Mapping[str, Any], **extra: Any) -> T:
    """A model dataclass from Octavia/Neutron JSON: known keys only; null where the model wants a value
    means the model's default (Octavia returns null for an empty description on some objects)."""
    kept: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if f.name in data and not (data[f.name] is None and f.default is not None and has_default):
            kept[f.name] = data[f.name]  # a null without a model default (port_id of a free floating IP) stays
    nested = {  # already model objects; sequences as tuples, as the model declares them
        k: tuple(v) if isinstance(v, list) else v
        for k, v in extra.items()
        if isinstance(v, list | tuple) or dataclasses.is_dataclass(v)
    }
    kept.update({k: v for k, v in extra.items() if k not in nested})
    for name in nested:
        kept.pop(name, None)
    return dataclasses.replace(from_json(cls, kept), **nested)  # type: ignore[type-var]


def utc_iso(value: Any) -> str | None:
    """An Octavia timestamp (ISO 8601, UTC without an offset) as ISO 8601 with its offset; None if absent."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        LOG.debug("not a timestamp: %r", value)
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.isoformat()


def epoch_of(value: Any) -> float | None:
    iso = utc_iso(value)
    return datetime.datetime.fromisoformat(iso).timestamp() if iso else None


def server_time(headers: Mapping[str, str]) -> float | None:
    """The server's clock (the HTTP Date header, whole seconds) when it answered, or None."""
    try:
        return email.utils.parsedate_to_datetime(headers["Date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def last_change(lb: Mapping[str, Any]) -> str | None:
    """A load balancer's last write as Octavia recorded it."""
    value = lb.get("updated_at") or lb.get("created_at")
    return value if isinstance(value, str) else None


def topology_of(flavor_data: str | None) -> tuple[str | None, str | None]:
    try:
        data = json.loads(flavor_data or "{}")
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    return data.get("loadbalancer_topology"), data.get("amp_image_tag")


def check_config_files() -> None:
    """Refuse a malformed clouds.yaml or secure.yaml in one line (the SDK would skip it with a warning and
    then not find the cloud). The parser's text is not shown: it may quote a line holding a password."""
    import os

    import yaml
    from openstack.config import loader

    paths = [os.environ.get("OS_CLIENT_CONFIG_FILE"), os.environ.get("OS_CLIENT_SECURE_FILE")]
    for path in [p for p in paths if p] + list(loader.CONFIG_FILES) + list(loader.SECURE_FILES):
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as stream:
                data = yaml.safe_load(stream)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {type(exc).__name__}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" near line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path} is not valid YAML{where}") from None
        if data is not None and not (isinstance(data, dict) and isinstance(data.get("clouds", {}), dict)):
            raise ConfigError(f"{path} is malformed: it must be a mapping with a `clouds:` mapping")


def public_url(url: str) -> str:
    """A URL without what may carry a secret (user info, query, fragment), without a trailing slash."""
    parts = urllib.parse.urlsplit(url.strip())
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port else "")
    return urllib.parse.urlunsplit((parts.scheme.lower(), netloc.lower(), parts.path.rstrip("/"), "", ""))


def quota_limit(value: Any) -> int:
    return -1 if value is None else int(value)
