"""The simulated cloud's state: one SQLite file with one record per object, so a call reads and writes only
the records it needs, and several processes share it safely (each call is one SQLite transaction).

Tables: ``meta`` (the clock, counters, faults and the small configuration: subnets, flavors, images...),
``obj`` (kind, id, JSON; ``due`` for a load balancer with a pending transition), ``idx`` (secondary keys:
floating IPs by port, tag and address, load balancers by VIP port, amphora and tag, ports by each fixed
address), ``counter``
(usage per project, fixed IPs per subnet, objects per kind) and ``log`` (the audit and the history).
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lbswap.errors import ConfigError

STATE_VERSION = 2
INDEX_VERSION = 2  # meta "indexes": which secondary keys the file has (an older file is re-indexed on open)
DEFAULT_PROJECT = "demo-project"
EXTERNAL_NETWORK = "public"
ALL_PROTOCOLS = ("HTTP", "HTTPS", "TCP", "UDP", "TERMINATED_HTTPS", "SCTP", "PROMETHEUS")
ALL_ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT")
KINDS = ("lbs", "fips", "ports")
LOGS = ("audit", "history")
# the fields a listing returns, kept beside the record so that a listing does not parse whole graphs
BRIEF_FIELDS = {
    "lbs": (
        "id",
        "name",
        "provisioning_status",
        "operating_status",
        "vip_address",
        "vip_port_id",
        "tags",
        "project_id",
        "provider",
        "flavor_id",
    )
}
BUSY_TIMEOUT = 120.0  # seconds another process may hold the cloud (one call) before ours gives up

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE obj (
    kind TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL, due REAL, brief TEXT, PRIMARY KEY (kind, id)
);
CREATE INDEX obj_due ON obj (kind, due) WHERE due IS NOT NULL;
CREATE TABLE idx (name TEXT NOT NULL, key TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (name, key, id)) WITHOUT ROWID;
CREATE TABLE counter (scope TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (scope, key))
    WITHOUT ROWID;
CREATE TABLE log (n INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, json TEXT NOT NULL);
"""


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


def new_id(state: Session, kind: str) -> str:
    """A deterministic id: the kind's hash and a sequence number, so that seeded clouds are reproducible."""
    state["seq"] += 1
    return str(uuid.UUID(int=(zlib.crc32(kind.encode()) & 0xFFFF) << 64 | state["seq"]))


def request_id(state: Session) -> str:
    return f"req-{state['calls']:06d}"


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# --- what each record adds to the indexes and counters -------------------------------------------------------


def index_keys(kind: str, rec: dict[str, Any]) -> set[tuple[str, str]]:
    if kind == "lbs":
        ports = {rec["vip_port_id"], *(v["port_id"] for v in rec["additional_vips"] if v.get("port_id"))}
        keys = {("lb.port", p) for p in ports} | {("lb.amphora", a["id"]) for a in rec["amphorae"]}
        return keys | {("lb.tag", t) for t in rec["tags"]}
    if kind == "fips":
        keys = {("fip.tag", t) for t in rec["tags"]} | {("fip.address", rec["floating_ip_address"])}
        return keys | ({("fip.port", rec["port_id"])} if rec["port_id"] else set())
    return {("port.ip", f"{subnet}|{ip}") for subnet, ip in fixed_ips(rec)}


def contributions(kind: str, rec: dict[str, Any]) -> dict[tuple[str, str], int]:
    """What a record counts for: objects per kind, usage per project (quotas), ports per subnet."""
    usage = f"usage:{rec.get('project_id')}"
    if kind == "lbs":
        pools, listeners = rec["pools"], rec["listeners"]
        return {
            ("count", kind): 1,
            (usage, "load_balancer"): 1,
            (usage, "listener"): len(listeners),
            (usage, "pool"): len(pools),
            (usage, "member"): sum(len(p["members"]) for p in pools),
            (usage, "health_monitor"): sum(1 for p in pools if p.get("healthmonitor")),
            (usage, "l7policy"): sum(len(li["l7policies"]) for li in listeners),
        }
    if kind == "fips":
        return {("count", kind): 1, **({(usage, "floatingip"): 1} if rec.get("project_id") else {})}
    counts = {("count", kind): 1, (usage, "port"): 1}
    for subnet, _ip in fixed_ips(rec):  # every fixed IP takes an address (additional VIPs too)
        counts[("subnet", subnet)] = counts.get(("subnet", subnet), 0) + 1
    return counts


def fixed_ips(port: dict[str, Any]) -> list[tuple[str, str]]:
    """(subnet, address) of every fixed IP of a port: its first, then any extra (additional VIPs)."""
    return [(port["subnet_id"], port["ip"]), *((e["subnet_id"], e["ip"]) for e in port.get("extra_ips", ()))]


# --- one transaction's view ----------------------------------------------------------------------------------


class Records:
    """The records of one kind as a mapping; reads are cached for the transaction and written back on flush."""

    def __init__(self, session: Session, kind: str) -> None:
        self._session = session
        self._db = session.db
        self.kind = kind
        self._cache: dict[str, list[Any]] = {}  # id -> [record or None, JSON in the database or None]

    def get(self, key: str, default: Any = None) -> Any:
        entry = self._cache.get(key)
        if entry is None:
            row = self._db.execute("SELECT json FROM obj WHERE kind = ? AND id = ?", (self.kind, key)).fetchone()
            entry = self._cache[key] = [json.loads(row[0]), row[0]] if row else [None, None]
        return default if entry[0] is None else entry[0]

    def __getitem__(self, key: str) -> Any:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __setitem__(self, key: str, record: dict[str, Any]) -> None:
        self.get(key)
        self._cache[key][0] = record

    def pop(self, key: str, default: Any = None) -> Any:
        found = self.get(key)
        if found is None:
            return default
        self._cache[key][0] = None
        return found

    def __delitem__(self, key: str) -> None:
        if self.pop(key) is None:
            raise KeyError(key)

    def __len__(self) -> int:
        return self._session.count("count", self.kind)

    def values(self) -> list[Any]:
        """Every record, in creation order (a full scan: for listings and tests)."""
        self._session.flush()
        rows = self._db.execute("SELECT id, json FROM obj WHERE kind = ? ORDER BY rowid", (self.kind,)).fetchall()
        for key, text in rows:
            self._cache.setdefault(key, [json.loads(text), text])
        return [self._cache[key][0] for key, _ in rows]

    def brief_texts(self, index: tuple[str, str] | None = None, *, any_of: Sequence[str] = ()) -> list[str]:
        """Every record's BRIEF_FIELDS as stored (JSON text), in creation order: a listing without parsing
        whole records. With ``index`` (name, key), only the records it finds (e.g. ``("lb.tag", tag)``); with
        ``any_of`` too, those it finds under any of these keys instead of ``key`` (each record once)."""
        self._session.flush()
        if index is None:
            rows = self._db.execute("SELECT brief FROM obj WHERE kind = ? ORDER BY rowid", (self.kind,))
        elif any_of:
            keys = sorted(set(any_of))
            marks = ", ".join("?" * len(keys))
            rows = self._db.execute(
                "SELECT brief FROM obj WHERE kind = ? AND id IN "  # noqa: S608 - only placeholders are formatted in
                f"(SELECT id FROM idx WHERE name = ? AND key IN ({marks})) ORDER BY rowid",
                (self.kind, index[0], *keys),
            )
        else:
            rows = self._db.execute(
                "SELECT brief FROM obj WHERE kind = ? AND id IN (SELECT id FROM idx WHERE name = ? AND key = ?) "
                "ORDER BY rowid",
                (self.kind, *index),
            )
        return [text for (text,) in rows]

    def forget(self) -> None:
        self._cache.clear()

    def flush(self) -> None:
        for key, entry in self._cache.items():
            record, stored = entry
            text = None if record is None else _dump(record)
            if text == stored:
                continue
            if stored is not None:
                self._unindex(key, json.loads(stored))
            if text is None:
                self._db.execute("DELETE FROM obj WHERE kind = ? AND id = ?", (self.kind, key))
            else:
                fields = BRIEF_FIELDS.get(self.kind)
                brief = _dump({f: record.get(f) for f in fields}) if fields else None
                self._db.execute(
                    "INSERT INTO obj (kind, id, json, due, brief) VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, id) "
                    "DO UPDATE SET json = excluded.json, due = excluded.due, brief = excluded.brief",
                    (self.kind, key, text, record.get("_until"), brief),
                )
                self._index(key, record)
            entry[1] = text

    def _index(self, key: str, record: dict[str, Any]) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO idx VALUES (?, ?, ?)", [(*k, key) for k in index_keys(self.kind, record)]
        )
        self._session.add_counts(contributions(self.kind, record), 1)

    def _unindex(self, key: str, record: dict[str, Any]) -> None:
        self._db.executemany(
            "DELETE FROM idx WHERE name = ? AND key = ? AND id = ?", [(*k, key) for k in index_keys(self.kind, record)]
        )
        self._session.add_counts(contributions(self.kind, record), -1)


class Log:
    """An append-only list (audit, history): appends go straight to the database."""

    def __init__(self, db: sqlite3.Connection, stream: str) -> None:
        self._db = db
        self.stream = stream

    def append(self, entry: dict[str, Any]) -> None:
        self._db.execute("INSERT INTO log (stream, json) VALUES (?, ?)", (self.stream, _dump(entry)))

    def entries(self) -> list[Any]:
        rows = self._db.execute("SELECT json FROM log WHERE stream = ? ORDER BY n", (self.stream,))
        return [json.loads(text) for (text,) in rows]


class Session:
    """One transaction on the cloud. ``state["lbs"]`` and the like are Records; other keys are meta values,
    read at the start and written back, when changed, at commit."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._stored = dict(db.execute("SELECT key, value FROM meta").fetchall())
        self._meta = {key: json.loads(value) for key, value in self._stored.items()}
        self._records = {kind: Records(self, kind) for kind in KINDS}
        self._logs = {stream: Log(db, stream) for stream in LOGS}

    def __getitem__(self, key: str) -> Any:
        if key in self._records:
            return self._records[key]
        if key in self._logs:
            return self._logs[key]
        return self._meta[key]

    def __setitem__(self, key: str, value: Any) -> None:
        assert key not in self._records and key not in self._logs
        self._meta[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        return self._meta.get(key, default)

    def setdefault(self, key: str, default: Any) -> Any:
        return self._meta.setdefault(key, default)

    # --- queries that need every pending change written first

    def flush(self) -> None:
        for records in self._records.values():
            records.flush()

    def forget_clean(self) -> None:
        """Write every change and drop the records read so far (a long seeding stays linear); the caller must
        hold no record it still changes."""
        self.flush()
        for records in self._records.values():
            records.forget()

    def find(self, kind: str, index: str, key: str) -> list[dict[str, Any]]:
        """The records of ``kind`` whose secondary key ``index`` is ``key`` (see ``index_keys``)."""
        self.flush()
        rows = self.db.execute("SELECT id FROM idx WHERE name = ? AND key = ?", (index, key)).fetchall()
        records = self._records[kind]
        return [r for r in (records.get(i) for (i,) in rows) if r is not None]

    def indexed(self, kind: str, index: str, key: str) -> bool:
        """Whether a record of ``kind`` has the secondary key ``index`` = ``key``, with that kind's pending
        changes written first (its index derives from its records alone); no record is read."""
        self._records[kind].flush()
        return (
            self.db.execute("SELECT 1 FROM idx WHERE name = ? AND key = ? LIMIT 1", (index, key)).fetchone() is not None
        )

    def due(self, now: float) -> list[dict[str, Any]]:
        """Load balancers whose pending transition ends at or before ``now``, in creation order."""
        self.flush()
        rows = self.db.execute("SELECT id FROM obj WHERE kind = 'lbs' AND due <= ? ORDER BY rowid", (now,)).fetchall()
        return [self._records["lbs"][i] for (i,) in rows]

    def count(self, scope: str, key: str) -> int:
        self.flush()
        row = self.db.execute("SELECT n FROM counter WHERE scope = ? AND key = ?", (scope, key)).fetchone()
        return int(row[0]) if row else 0

    def counts(self, scope: str) -> dict[str, int]:
        self.flush()
        return {k: int(n) for k, n in self.db.execute("SELECT key, n FROM counter WHERE scope = ?", (scope,))}

    def add_counts(self, amounts: dict[tuple[str, str], int], sign: int) -> None:
        self.db.executemany(
            "INSERT INTO counter VALUES (?, ?, ?) ON CONFLICT (scope, key) DO UPDATE SET n = n + excluded.n",
            [(scope, key, sign * n) for (scope, key), n in amounts.items() if n],
        )

    def set_count(self, scope: str, key: str, n: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO counter VALUES (?, ?, ?)", (scope, key, n))

    # --- transaction control

    def savepoint(self) -> None:
        """Mark where a refused call rolls back to: records and counters, not meta (ids stay used)."""
        self.flush()
        self.db.execute("SAVEPOINT call")

    def rollback_to_savepoint(self) -> None:
        self.db.execute("ROLLBACK TO call")
        self.db.execute("RELEASE call")
        for records in self._records.values():
            records.forget()

    def release_savepoint(self) -> None:
        self.db.execute("RELEASE call")

    def commit(self) -> None:
        self.flush()
        for key, value in self._meta.items():
            text = _dump(value)
            if self._stored.get(key) != text:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, text))
                self._stored[key] = text
        self.db.execute("COMMIT")

    # --- the whole state as one document (tests and operator helpers; cost grows with the cloud)

    def to_dict(self) -> dict[str, Any]:
        whole: dict[str, Any] = json.loads(_dump(self._meta))
        for kind, records in self._records.items():
            whole[kind] = {r["id"]: r for r in json.loads(_dump(records.values()))}
        for stream, log in self._logs.items():
            whole[stream] = log.entries()
        return whole

    def replace(self, whole: dict[str, Any]) -> None:
        """Make the cloud exactly ``whole`` (a document from ``to_dict``, changed)."""
        for kind in KINDS:
            self._records[kind].forget()
        self.db.execute("DELETE FROM obj")
        self.db.execute("DELETE FROM idx")
        self.db.execute("DELETE FROM counter")
        for kind in KINDS:
            for key, record in whole.get(kind, {}).items():
                self._records[kind][key] = record
        for stream in LOGS:
            if whole.get(stream, []) != self._logs[stream].entries():
                self.db.execute("DELETE FROM log WHERE stream = ?", (stream,))
                for entry in whole.get(stream, []):
                    self._logs[stream].append(entry)
        meta = {k: v for k, v in whole.items() if k not in KINDS and k not in LOGS}
        for key in set(self._meta) - set(meta):
            self.db.execute("DELETE FROM meta WHERE key = ?", (key,))
            self._stored.pop(key, None)
        self._meta = meta
        self.flush()


# --- the file ------------------------------------------------------------------------------------------------


def no_cloud(path: Path) -> ConfigError:
    return ConfigError(f"no simulated cloud at {path}: create it with `lbswap fake seed {path} --sample N`")


def _not_a_state_file(path: Path, why: str) -> ConfigError:
    return ConfigError(
        f"{path} is not a simulated cloud ({why}): point --backend at another file, "
        f"or replace it with `lbswap fake seed {path} --sample N --force`"
    )


def _connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    mode = "rwc" if create else "rw"
    db = sqlite3.connect(
        f"file:{path}?mode={mode}", uri=True, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
    )
    return db


def _tune(db: sqlite3.Connection) -> None:
    # WAL: readers never wait for the writer; NORMAL: a commit survives the process dying (what crash tests do)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")


def open_db(path: Path) -> sqlite3.Connection:
    """A connection to an existing cloud, its shape checked.

    :raises ConfigError: one line naming the file and what to do, for a missing, unreadable or foreign file.
    """
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a simulated cloud: give --backend fake:FILE")
    if not path.exists():
        raise no_cloud(path)
    try:
        db = _connect(path)
        row = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    except sqlite3.DatabaseError as exc:
        why = f"not a state database: {exc}"
        if "no such table" in str(exc):
            why = "an SQLite database without the simulator's tables"
        elif "file is not a database" in str(exc):
            why = "not an SQLite database (older lbswap versions wrote JSON)"
        raise _not_a_state_file(path, why) from None
    version = json.loads(row[0]) if row else None
    if version != STATE_VERSION:
        db.close()
        raise _not_a_state_file(path, f"state version {version!r}, expected {STATE_VERSION}")
    try:
        _tune(db)
        _reindex(db)
    except sqlite3.Error as exc:
        raise unusable(path, exc) from None
    return db


def _index_version(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = 'indexes'").fetchone()
    return int(json.loads(row[0])) if row else 1


def _reindex(db: sqlite3.Connection) -> None:
    """Bring a file written by an older lbswap to INDEX_VERSION: every record's secondary keys again (once;
    its cost grows with the cloud)."""
    if _index_version(db) >= INDEX_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if _index_version(db) < INDEX_VERSION:  # another process may have done it meanwhile
            db.execute("DELETE FROM idx")
            for kind, key, text in db.execute("SELECT kind, id, json FROM obj").fetchall():
                keys = index_keys(kind, json.loads(text))
                db.executemany("INSERT OR IGNORE INTO idx VALUES (?, ?, ?)", [(*k, key) for k in keys])
            db.execute("INSERT OR REPLACE INTO meta VALUES ('indexes', ?)", (_dump(INDEX_VERSION),))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def unusable(path: Path, exc: BaseException) -> ConfigError:
    """A storage failure (disk full, read-only directory, a lock held too long) as one line."""
    return ConfigError(f"cannot use simulated cloud {path}: {exc}")


@contextmanager
def new_cloud(path: str | os.PathLike[str]) -> Iterator[Session]:
    """A new, empty cloud to fill (seeding); it replaces whatever was at ``path`` once the block ends."""
    target = Path(path)
    tmp = target.with_name(target.name + ".new")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in (tmp, *_companions(tmp)):
            stale.unlink(missing_ok=True)
        db = _connect(tmp, create=True)
        _tune(db)
        db.executescript(SCHEMA)
        meta = {k: v for k, v in empty_state().items() if k not in KINDS and k not in LOGS}
        meta["indexes"] = INDEX_VERSION
        db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, _dump(v)) for k, v in meta.items()])
        db.execute("BEGIN IMMEDIATE")
        session = Session(db)
        yield session
        session.commit()
        db.close()
        for stale in _companions(target):  # another database's journal must never be applied to this one
            stale.unlink(missing_ok=True)
        os.replace(tmp, target)
    except (OSError, sqlite3.Error) as exc:
        raise unusable(target, exc) from None


def _companions(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]
