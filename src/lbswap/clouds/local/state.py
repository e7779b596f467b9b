"""The local cloud's state: one JSON file in the state directory, read and rewritten under an fcntl lock, so
that every lbswap invocation, the workers and ``lbswap resume`` after a crash see the same cloud."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lbswap.errors import CloudError, ConfigError

STATE_VERSION = 1

# addressing (TEST-NET and 10/8, only ever inside namespaces this backend creates)
CLIENT_ADDRESS = "198.51.100.10"
ROUTER_EXTERNAL = "198.51.100.1"
EXTERNAL_PREFIX = 24
FIP_NETWORK = "203.0.113"  # floating IPs 203.0.113.10-250
TENANT_GATEWAY = "10.0.0.1"
TENANT_PREFIX = 16
MEMBER_NET = "10.0.1"  # members 10.0.1.10+
VIP_NET = "10.0.2"  # VIP ports 10.0.2.10-250
AMPHORA_NET = "10.0.3"  # amphora own addresses 10.0.3.10-250 (then 10.0.4...)
MEMBER_PORT = 8080
SUBNET_ID = "subnet-tenant"
NETWORK_ID = "net-tenant"
EXTERNAL_NETWORK = "public"
PROJECT = "demo-project"


def default_state_dir() -> Path:
    """``$LBSWAP_LOCAL_DIR``, else ``$XDG_STATE_HOME/lbswap/local`` (``~/.local/state/lbswap/local``)."""
    if os.environ.get("LBSWAP_LOCAL_DIR"):
        return Path(os.environ["LBSWAP_LOCAL_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "lbswap" / "local"


def lab_prefix(state_dir: Path) -> str:
    """A short name prefix for this cloud's namespaces, so that two state directories never share one."""
    return "lbs" + hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:5]


def empty_state(prefix: str) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "prefix": prefix,
        "seq": 0,
        "boot_seconds": 3.0,  # stands for Octavia's VM boot + port plug + listener configuration
        "flush_conntrack": False,
        "lbs": {},
        "fips": {},
        "ports": {},
        "images": [],
        "flavors": {
            "flavor-single": {"id": "flavor-single", "name": "single", "provider": "amphora", "topology": "SINGLE"},
            "flavor-ha": {"id": "flavor-ha", "name": "ha", "provider": "amphora", "topology": "ACTIVE_STANDBY"},
            # a flavor whose profile pins an image tag (publish an image tagged amphora-canary to use it)
            "flavor-canary": {
                "id": "flavor-canary",
                "name": "canary",
                "provider": "amphora",
                "topology": "SINGLE",
                "amp_image_tag": "amphora-canary",
            },
        },
        "members": [],
        "pids": {},  # lab processes: name -> pid (members)
        "ops": {},
    }


class StateFile:
    """``state.json`` in ``directory``; ``open(write=True)`` is a read-modify-write under the lock."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "state.json"
        self.lock_path = directory / "state.lock"

    def exists(self) -> bool:
        return self.path.exists()

    @contextmanager
    def open(self, *, write: bool) -> Iterator[dict[str, Any]]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._load()
                yield state
                if write:
                    self._save(state)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def create(self, state: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._save(state)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def _load(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"no local cloud in {self.directory}: start it with `lbswap local up`") from None
        except ValueError as exc:
            raise ConfigError(f"{self.path} is not a local cloud state file: {exc}") from None
        if state.get("version") != STATE_VERSION:
            raise ConfigError(f"{self.path} has state version {state.get('version')}, expected {STATE_VERSION}")
        return state

    def _save(self, state: dict[str, Any]) -> None:
        tmp = self.path.with_name("state.json.tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, self.path)


def new_id(state: dict[str, Any]) -> str:
    state["seq"] += 1
    return str(uuid.uuid4())


def now_iso(ts: float | None = None) -> str:
    ts = time.time() if ts is None else ts
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1e6) % 1_000_000:06d}"


def free_address(taken: set[str], net: str, *, first: int = 10, last: int = 250) -> str:
    """The lowest free host address ``net.N`` (N in first..last)."""
    for n in range(first, last + 1):
        address = f"{net}.{n}"
        if address not in taken:
            return address
    raise LookupError(f"no free address left in {net}.0/24")


def amphora_address(state: dict[str, Any]) -> str:
    taken = {a["address"] for lb in state["lbs"].values() for a in lb["amphorae"]}
    taken |= {a["address"] for op in state["ops"].values() for a in op.get("retiring", [])}
    for third in range(3, 10):
        try:
            return free_address(taken, f"10.0.{third}")
        except LookupError:
            continue
    raise LookupError("no free amphora address left")


def images_with_tag(state: Mapping[str, Any], tag: str) -> list[dict[str, Any]]:
    return sorted((i for i in state["images"] if tag in i["tags"]), key=lambda i: i["created_at"], reverse=True)


def publish(
    state: dict[str, Any],
    name: str,
    tags: list[str],
    template: str,
    *,
    fault: str | None = None,
    fault_after: float = 0.0,
) -> dict[str, Any]:
    image: dict[str, Any] = {
        "id": new_id(state),
        "name": name,
        "tags": tags,
        "created_at": now_iso(),
        "template": template,
    }
    if fault:
        image.update(fault=fault, fault_after=float(fault_after))
    state["images"].append(image)
    return image


def boot_image(state: Mapping[str, Any], lb: Mapping[str, Any]) -> dict[str, Any]:
    """The newest image with the flavor's amp_image_tag (default ``amphora``), as Octavia boots."""
    tag = "amphora"
    if lb.get("flavor_id"):
        tag = state["flavors"][lb["flavor_id"]].get("amp_image_tag") or tag
    images = images_with_tag(state, tag)
    if not images:
        raise CloudError(f"no amphora image carries the tag {tag}", status_code=500)
    return images[0]


def new_amphora(state: dict[str, Any], lb: Mapping[str, Any], role: str, prefix: str) -> dict[str, Any]:
    state["amp_index"] = state.get("amp_index", 0) + 1
    index = state["amp_index"]
    ns = f"{prefix}-a{index}"
    amphora = {
        "id": new_id(state),
        "index": index,
        "role": role,
        "image_id": boot_image(state, lb)["id"],
        "status": "ALLOCATED",
        "compute_id": ns,
        "ns": ns,
        "address": amphora_address(state),
    }
    image = boot_image(state, lb)
    # who served a TCP connection is known by the amphora's address: keep every address's image for reports
    state.setdefault("amphora_log", []).append(
        {
            "id": amphora["id"],
            "address": amphora["address"],
            "image": image["name"],
            "lb_id": lb["id"],
            "at": time.time(),
        }
    )
    return amphora


def lb_of_amphora_address(state: Mapping[str, Any], address: str) -> str | None:
    """The load balancer whose amphora has ``address`` (the member-side address a member sees): one that runs
    now, else the last one the log gave it (an amphora retired since); None when no amphora had it."""
    for lb in state["lbs"].values():
        if any(a["address"] == address for a in lb["amphorae"]):
            return str(lb["id"])
    for entry in reversed(state.get("amphora_log", [])):
        if entry["address"] == address:
            return str(entry["lb_id"])
    return None
