"""One driver per swap across conductors, and the fleet policy across them, decided in the journal.

A conductor drives a swap under a lease of that swap alone: a row of the journal's ``lbswap_leases`` keyed
``CAMPAIGN/LB`` (a campaign's own lease is keyed ``CAMPAIGN``). The journal's guard renews it, checks it before
every side effect and before every journal write (fencing: :class:`lbswap.workflow.guard.GuardedCloud`), as for
a campaign's lease. Unlike a campaign's lease, a swap's lease lapses after ``stale_after`` seconds without a
heartbeat even when its holder runs on this host: a conductor stopped (SIGSTOP) past its jobboard claim loses
the swap to another conductor, and acts no more once it runs again (its token is gone).

Whether a pending swap may start is decided in the same write transaction that takes its lease, from the rows
of the whole campaign: the canary swaps one at a time and first; the circuit breaker (a failed canary,
``max_failures`` failed or rolled back); at most ``parallel`` swaps of the campaign under a live lease at
once, whichever conductors hold them; at most ``rate`` swaps started per minute. On a journal shared through a
database server the transaction locks the server's writers' row first (:meth:`lbswap.journal_db.Database.write`),
so conductors on several hosts decide one at a time exactly as on one SQLite file. Nothing here is ever released
by deleting the row: a lapsed lease keeps its token, so a token is never handed out twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from lbswap import journal_db
from lbswap.errors import LeaseHeld, StopSwap
from lbswap.journal import LEASE_TIMEOUT, Holder, Lease
from lbswap.journal_db import Database, Location
from lbswap.state import TERMINAL, UNSUCCESSFUL, SwapState

SEP = "/"
SUCCESS = frozenset({SwapState.DONE, SwapState.KEPT})


def swap_key(campaign_id: str, lb_id: str) -> str:
    return f"{campaign_id}{SEP}{lb_id}"


@dataclass(frozen=True)
class Decision:
    """What a conductor does with a swap's job now.

    ``action``: ``drive`` (lease taken), ``skip`` (lease taken: mark it skipped, the breaker is open),
    ``finished`` (nothing left: consume the job), ``wait`` (not now: give the job back), ``held`` (another
    conductor drives it)."""

    action: str
    why: str = ""
    lease: Lease | None = None


@dataclass(frozen=True)
class _Row:
    lb_id: str
    position: int
    state: str
    phase: str


@dataclass(frozen=True)
class _LeaseRow:
    key: str
    holder: Holder
    heartbeat: float
    token: int
    taken: float = 0.0
    stale_after: float = 0.0  # the holder's own lease timeout (0: not recorded, the reader's is used)
    creating: bool = False  # the holder's swap holds a creation slot (--max-creating)


def _live(lease: _LeaseRow, now: float, stale_after: float) -> bool:
    """Judged by the holder's own lease timeout when it recorded one (``--lease-timeout`` of that conductor),
    else by ``stale_after``."""
    if now - lease.heartbeat >= (lease.stale_after or stale_after):
        return False
    return lease.holder.host != Holder.me().host or lease.holder.alive()


def _campaign_lease_live(lease: _LeaseRow, now: float) -> bool:
    """The journal's rule for a campaign's lease: on this host its process runs, elsewhere it beat lately."""
    if lease.holder.host == Holder.me().host:
        return lease.holder.alive()
    return now - lease.heartbeat < LEASE_TIMEOUT


def refuse_held_swaps(path: Location, campaign_id: str, *, stale_after: float = LEASE_TIMEOUT) -> None:
    """Refuse to drive a campaign in-process while a conductor drives one of its swaps (I9): a swap's lease
    held by another process, live by the conductors' rule (its holder's own lease timeout; ``stale_after``
    for a lease that recorded none).

    :raises LeaseHeld: names the campaign, the load balancer and the holder.
    :raises StopSwap: the journal cannot be read.
    """
    try:
        with _db(path) as db:
            held = _leases(db, campaign_id)
    except sqlite3.OperationalError as exc:
        raise StopSwap(f"journal {path}: cannot read the swaps' leases ({exc})") from None
    me, now = Holder.me(), time.time()
    for key, lease in sorted(held.items()):
        if key != campaign_id and lease.holder != me and _live(lease, now, stale_after):
            lb_id = key[len(campaign_id) + len(SEP) :]
            raise LeaseHeld(
                f"campaign {campaign_id}: load balancer {lb_id} is being driven by host {lease.holder.host} "
                f"pid {lease.holder.pid} (a conductor): stop the conductors (or wait until they finish) and run again"
            )


def finished(row: _Row) -> bool:
    return row.state in TERMINAL and not (row.state == SwapState.FAILED and row.phase != "end")


def decide(
    rows: Sequence[_Row],
    leases: dict[str, _LeaseRow],
    campaign_id: str,
    lb_id: str,
    fleet: dict[str, Any],
    *,
    now: float,
    stale_after: float,
) -> Decision:
    """The decision for one swap from the campaign's rows and swap leases (pure: tested without a journal)."""
    by_id = {r.lb_id: r for r in rows}
    row = by_id.get(lb_id)
    if row is None:
        return Decision("finished", f"campaign {campaign_id} has no load balancer {lb_id}")
    if finished(row) or row.state == SwapState.KEPT:
        return Decision("finished", f"already {row.state}")
    whole = leases.get(campaign_id)  # the campaign's own lease: `lbswap resume`/`rollback` drive it in-process
    if whole is not None and _campaign_lease_live(whole, now):
        return Decision("wait", f"host {whole.holder.host} pid {whole.holder.pid} drives the whole campaign")
    key = swap_key(campaign_id, lb_id)
    mine = leases.get(key)
    if mine is not None and _live(mine, now, stale_after):
        return Decision("held", f"driven by host {mine.holder.host} pid {mine.holder.pid}")
    if row.state != SwapState.PENDING:  # started before (its conductor died): it continues, whatever the gates
        return Decision("drive", f"continues from {row.state}")
    canary = int(fleet.get("canary") or 0)
    parallel = max(1, int(fleet.get("parallel") or 1))
    max_failures = fleet.get("max_failures")
    ordered = sorted(rows, key=lambda r: r.position)
    canaries = ordered[:canary]
    for c in canaries:
        if c.state in UNSUCCESSFUL:
            return Decision("skip", f"the canary {c.lb_id} ended {c.state}")
    failures = sum(1 for r in rows if r.state in UNSUCCESSFUL)
    if max_failures is not None and failures >= int(max_failures):
        why = f"the circuit breaker opened after {failures} failed or rolled-back swap(s)"
        return Decision("skip", f"{why} (--max-failures {max_failures})")
    in_flight = [k for k, lease in leases.items() if k not in (key, campaign_id) and _live(lease, now, stale_after)]
    if row.position < canary:
        earlier = [c for c in canaries if c.position < row.position]
        if any(c.state not in SUCCESS for c in earlier):
            return Decision("wait", "an earlier canary has not finished")
        if in_flight:
            return Decision("wait", "a canary runs alone")
    else:
        if any(c.state not in SUCCESS for c in canaries):
            return Decision("wait", "the canary has not finished")
        if len(in_flight) >= parallel:
            return Decision("wait", f"{len(in_flight)} swap(s) of the campaign in flight (--parallel {parallel})")
    rate = fleet.get("rate")
    if rate:  # swaps started per minute, across conductors: from the last lease taken (a takeover counts too)
        last = max((lease.taken for k, lease in leases.items() if k != campaign_id), default=0.0)
        if now - last < 60.0 / float(rate):
            return Decision("wait", f"the next swap may start {60.0 / float(rate) - (now - last):.0f} s from now")
    return Decision("drive", "starts")


@contextmanager
def _db(path: Location) -> Iterator[Database]:
    """A connection to the journal: a new one to a file, this thread's own to a server (kept open)."""
    db = journal_db.shared(path)
    try:
        yield db
    finally:
        journal_db.release(db)


def _read(db: Database, campaign_id: str) -> tuple[list[_Row], dict[str, _LeaseRow], dict[str, Any]]:
    rows = [
        _Row(r[0], int(r[1]), r[2], r[3])
        for r in db.execute(
            "SELECT lb_id, position, state, phase FROM lbswap_swaps WHERE campaign_id=? ORDER BY position",
            (campaign_id,),
        )
    ]
    return rows, _leases(db, campaign_id), _fleet(db, campaign_id)


def _leases(db: Database, campaign_id: str) -> dict[str, _LeaseRow]:
    """The campaign's own lease and its swaps' leases."""
    prefix = campaign_id + SEP
    return {
        r[0]: _LeaseRow(
            r[0], Holder(r[1], int(r[2]), r[3]), float(r[4]), int(r[5]), float(r[6]), float(r[7]), bool(r[8])
        )
        for r in db.execute(
            "SELECT campaign_id, host, pid, proc_start, heartbeat, token, taken, stale_after, creating "
            "FROM lbswap_leases "
            "WHERE substr(campaign_id, 1, ?) = ? OR campaign_id = ?",
            (len(prefix), prefix, campaign_id),
        )
    }


def _fleet(db: Database, campaign_id: str) -> dict[str, Any]:
    """The campaign's recorded fleet policy (canary, breaker, --parallel, --rate, --max-creating)."""
    options = db.execute("SELECT options FROM lbswap_campaigns WHERE id=?", (campaign_id,)).fetchone()
    fleet: dict[str, Any] = json.loads(options[0]).get("fleet", {}) if options else {}
    return fleet


def peek(path: Location, campaign_id: str, *, stale_after: float) -> Callable[[str], Decision]:
    """What :func:`take` would decide now for each swap of the campaign, from one read and without taking
    anything: a conductor skips the jobs it cannot run yet without claiming them."""
    with _db(path) as db:
        rows, leases, fleet = _read(db, campaign_id)
    now = time.time()
    return lambda lb_id: decide(rows, leases, campaign_id, lb_id, fleet, now=now, stale_after=stale_after)


def take(path: Location, campaign_id: str, lb_id: str, *, stale_after: float) -> Decision:
    """Decide and, for ``drive`` or ``skip``, take the swap's lease, in one write transaction.

    :raises StopSwap: the journal cannot be written.
    """
    try:
        with _db(path) as connection, connection.write() as db:  # BEGIN IMMEDIATE, or the server's lock row
            rows, leases, fleet = _read(db, campaign_id)
            now = time.time()
            decision = decide(rows, leases, campaign_id, lb_id, fleet, now=now, stale_after=stale_after)
            if decision.action in ("drive", "skip"):
                key = swap_key(campaign_id, lb_id)
                previous = leases.get(key)
                token = (previous.token if previous else 0) + 1
                me = Holder.me()
                db.execute(
                    "INSERT OR REPLACE INTO lbswap_leases (campaign_id, host, pid, proc_start, taken, heartbeat, "
                    "token, stale_after, creating) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                    (key, me.host, me.pid, me.proc_start, now, now, token, stale_after),
                )
                decision = Decision(decision.action, decision.why, Lease(key, me, now, now, token))
        return decision
    except sqlite3.OperationalError as exc:
        raise StopSwap(f"journal {path}: cannot take a swap's lease ({exc})") from None


def lapse(path: Location, lease: Lease) -> None:
    """Give a swap's lease up: it lapses at once and keeps its token (the next holder's is higher)."""
    try:
        with _db(path) as connection, connection.write() as db:
            db.execute(
                "UPDATE lbswap_leases SET heartbeat=0 WHERE campaign_id=? AND token=?", (lease.campaign_id, lease.token)
            )
    except sqlite3.OperationalError:  # it lapses by itself after stale_after
        pass


def take_creation_slot(path: Location, lease: Lease, *, stale_after: float) -> bool:
    """Take one of the campaign's ``--max-creating`` slots for the swap under ``lease``, in one write
    transaction: True when taken (or already held, or no limit), False when every slot is held by a swap under
    a live lease. A slot is held from the clone's create until it is ready; a lease that lapses (its conductor
    died or stopped) frees its slot with it.

    :raises StopSwap: the lease is no longer this process's, or the journal cannot be written.
    """
    campaign_id, _sep, _lb = lease.campaign_id.partition(SEP)
    try:
        with _db(path) as connection, connection.write() as db:
            leases, fleet = _leases(db, campaign_id), _fleet(db, campaign_id)  # not the swap rows: polled often
            mine = leases.get(lease.campaign_id)
            if mine is None or mine.token != lease.token:
                raise StopSwap(f"swap {lease.campaign_id}: this process lost its lease; it stopped")
            limit = fleet.get("max_creating")
            if mine.creating or not limit:
                return True
            now = time.time()
            held = [
                k
                for k, row in leases.items()
                if k != lease.campaign_id and row.creating and _live(row, now, stale_after)
            ]
            if len(held) >= int(limit):
                return False
            db.execute(
                "UPDATE lbswap_leases SET creating=1 WHERE campaign_id=? AND token=?", (lease.campaign_id, lease.token)
            )
            return True
    except sqlite3.OperationalError as exc:
        raise StopSwap(f"journal {path}: cannot take a creation slot ({exc})") from None


def give_creation_slot(path: Location, lease: Lease) -> None:
    """The swap's clone is ready (or its create undone): its creation slot is free for another swap."""
    try:
        with _db(path) as connection, connection.write() as db:
            db.execute(
                "UPDATE lbswap_leases SET creating=0 WHERE campaign_id=? AND token=?", (lease.campaign_id, lease.token)
            )
    except sqlite3.OperationalError:  # it is freed when the lease lapses
        pass


class CreationSlots:
    """``--max-creating`` across conductors: the interface of :class:`lbswap.workflow.context.CreationSlots`
    (one swap's driver takes and gives back), kept in the journal on the swap's lease row."""

    def __init__(
        self, path: Location, lease: Lease, check: Callable[[], None], *, stale_after: float, poll: float
    ) -> None:
        self.path = path
        self.lease = lease
        self.check = check
        self.stale_after = stale_after
        self.poll = poll

    def limit(self, limit: int | None) -> None:
        """The limit is the campaign's own (its recorded fleet policy)."""

    def take(self, who: str) -> None:
        while not take_creation_slot(self.path, self.lease, stale_after=self.stale_after):
            self.check()  # a stop asked for while waiting: leave at once
            time.sleep(self.poll)

    def give_back(self, who: str) -> None:
        give_creation_slot(self.path, self.lease)
