"""The simulated cloud's state file: one JSON document, locked with fcntl, replaced atomically on every write.

A small ``.gen`` file beside it changes on every write, so a process re-reads the big file only when another
process changed it.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from lbswap.errors import ConfigError

STATE_VERSION = 1
DEFAULT_PROJECT = "demo-project"
EXTERNAL_NETWORK = "public"
ALL_PROTOCOLS = ("HTTP", "HTTPS", "TCP", "UDP", "TERMINATED_HTTPS", "SCTP", "PROMETHEUS")
ALL_ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT")


def empty_state() -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "clock": 1_800_000_000.0,
        "seq": 0,
        "latency": 2.0,
        "drain_seconds": 25.0,
        "stats_lag": 10.0,
        "calls": 0,
        "side_effects": 0,
        "faults": {},
        "audit": [],
        "history": [],
        "lbs": {},
        "fips": {},
        "ports": {},
        "subnets": {},
        "images": [],
        "flavors": {},
        "providers": {
            "amphora": {"listener_protocols": list(ALL_PROTOCOLS), "lb_algorithms": list(ALL_ALGORITHMS)},
            "ovn": {"listener_protocols": ["TCP", "UDP", "SCTP"], "lb_algorithms": ["SOURCE_IP_PORT"]},
        },
        "quotas": {},
        "unreadable_secrets": [],
    }


def new_id(state: dict[str, Any], kind: str) -> str:
    """A deterministic id: the kind's hash and a sequence number, so that seeded clouds are reproducible."""
    state["seq"] += 1
    return str(uuid.UUID(int=(zlib.crc32(kind.encode()) & 0xFFFF) << 64 | state["seq"]))


def request_id(state: dict[str, Any]) -> str:
    return f"req-{state['calls']:06d}"


def write_new(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write a whole new state file (seeding)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(state, separators=(",", ":")))
        os.replace(tmp, target)
        target.with_name(target.name + ".gen").write_text(f"seed:{uuid.uuid4().hex}")
    except OSError as exc:
        raise ConfigError(f"cannot write simulated cloud {target}: {exc.strerror or exc}") from None


def read_state(path: Path) -> dict[str, Any]:
    """The state in a file, checked for the shape this simulator writes.

    :raises ConfigError: one line naming the file and what to do, for a missing, unreadable or foreign file.
    """
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise no_cloud(path) from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a simulated cloud: give --backend fake:FILE") from None
    except OSError as exc:
        raise ConfigError(f"cannot read simulated cloud {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise _not_a_state_file(path, f"not JSON: {exc}") from None
    problem = state_problem(state)
    if problem:
        raise _not_a_state_file(path, problem)
    return state  # type: ignore[no-any-return]


def state_problem(state: Any) -> str | None:
    """What makes a decoded document not a state file of this version, or None."""
    if not isinstance(state, dict):
        return f"a JSON {type(state).__name__}, not an object"
    if state.get("version") != STATE_VERSION:
        return f"state version {state.get('version')!r}, expected {STATE_VERSION}"
    for key, example in empty_state().items():
        if key not in state:
            return f"no {key!r}"
        wanted = (int, float) if isinstance(example, int | float) else type(example)
        if not isinstance(state[key], wanted) or isinstance(state[key], bool):
            return f"{key!r} is a JSON {type(state[key]).__name__}"
    return None


def no_cloud(path: Path) -> ConfigError:
    return ConfigError(f"no simulated cloud at {path}: create it with `lbswap fake seed {path} --sample N`")


def _not_a_state_file(path: Path, why: str) -> ConfigError:
    return ConfigError(
        f"{path} is not a simulated cloud ({why}): point --backend at another file, "
        f"or replace it with `lbswap fake seed {path} --sample N --force`"
    )


class StateFile:
    """One state file, shared by threads (an RLock) and processes (flock on ``PATH.lock``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._cache: dict[str, Any] | None = None
        self._cache_key: str | None = None
        self._gen_path = path.with_name(path.name + ".gen")
        self._depth = 0

    @contextmanager
    def locked(self, *, write: bool) -> Iterator[tuple[dict[str, Any], bool]]:
        """The state under the lock, and whether this is the outermost use (nested uses share one load/save).

        Saved on exit when ``write``, also when the body raised: a failed call's counters must persist.
        """
        with self._thread_lock:
            if self._depth:
                assert self._cache is not None
                yield self._cache, False
                return
            with self._lock_file() as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                try:
                    state = self._load()
                    self._depth += 1
                    try:
                        yield state, True
                    finally:
                        self._depth -= 1
                        if write:
                            self._save(state)
                finally:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _lock_file(self) -> IO[str]:
        try:
            return open(self.path.with_name(self.path.name + ".lock"), "a")
        except OSError as exc:
            raise ConfigError(f"cannot lock simulated cloud {self.path}: {exc.strerror or exc}") from None

    def forget(self) -> None:
        self._cache = None

    def _load(self) -> dict[str, Any]:
        # the generation file is tiny: reading it on every call tells whether another writer changed the state
        try:
            generation = self._gen_path.read_text()
        except FileNotFoundError:
            generation = ""
        except OSError:
            generation = ""  # a broken .gen file only costs a re-read
        if self._cache is None or not generation or generation != self._cache_key:
            self._cache = read_state(self.path)
            self._cache_key = generation
        return self._cache

    def _save(self, state: dict[str, Any]) -> None:
        state["generation"] = state.get("generation", 0) + 1
        tmp = self.path.with_name(self.path.name + ".tmp")
        generation = f"{state['generation']}:{uuid.uuid4().hex}"
        try:
            tmp.write_text(json.dumps(state, separators=(",", ":")))
            os.replace(tmp, self.path)
            self._gen_path.write_text(generation)
        except OSError as exc:
            self._cache = None  # what is on disk is unknown now: read it again next time
            raise ConfigError(f"cannot write simulated cloud {self.path}: {exc.strerror or exc}") from None
        self._cache, self._cache_key = state, generation
