"""One status watcher per campaign: the load balancers its swaps wait on are read together, with one list call
per interval filtered by the campaign's marker tag (Octavia filters load balancers by tag), and each waiting
swap is woken by the first read that began after it started waiting.

API calls per interval do not grow with the number of swaps waiting (one more per ``TAGS_PER_LIST`` of them),
and a clone that turned ACTIVE is noticed by the next list call, at most one interval later. Nor does what a
list call returns grow with the swaps that ended: a clone keeps the campaign's marker for its life, so while
every load balancer waited on names a tag of its own (its clone-of marker), the list call asks only for those
(Octavia's ``tags-any`` next to ``tags``): the clones waited on, not every clone the campaign built.

No thread of its own: a waiting swap's thread makes the reads (one at a time), the others wait for what it
read. A source is read on its own from the start (it never carries the campaign's marker), and so is a load
balancer the listing does not show (one without the tag; one just deleted), with the backoff a swap used to
poll with, so that a 404 still reaches its waiter. Errors back off: a transient error of the listing doubles
the interval until a listing succeeds again; a listing the cloud refuses (an API without the tags filter)
turns the watcher into per-load-balancer polling, said once in the log (without ``tags-any``: lists by tag
only).
"""

from __future__ import annotations

import copy
import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from lbswap.clouds.base import Clock, Cloud
from lbswap.clouds.retry import transient
from lbswap.errors import CloudError
from lbswap.model import LBSummary

LOG = logging.getLogger(__name__)

#: seconds between two list calls while nothing fails
DEFAULT_INTERVAL = 2.0
#: the longest interval that errors back off to
MAX_INTERVAL = 60.0
#: real seconds a swap waiting for another's read sleeps at most before it checks for a stop again
WAKE = 0.5
#: tags one list call narrows to at most (``tags-any`` is in the URL: about 60 bytes per marker, encoded)
TAGS_PER_LIST = 32


@dataclass
class _Direct:
    """A load balancer read on its own: when next, and the delay after that."""

    due: float
    delay: float


class StatusWatcher:
    """Serves the status waits of many swaps from one list call per interval (see the module doc).

    ``tags``: the list filter every watched clone carries (empty: every load balancer is read on its own).
    ``poll_initial`` and ``poll_max``: the backoff of a load balancer read on its own. ``clock``: the cloud's
    unless given (tests inject one).
    """

    def __init__(
        self,
        cloud: Cloud,
        *,
        tags: Sequence[str] = (),
        interval: float = DEFAULT_INTERVAL,
        max_interval: float = MAX_INTERVAL,
        poll_initial: float = 1.0,
        poll_max: float = 15.0,
        clock: Clock | None = None,
    ) -> None:
        self.cloud = cloud
        self.clock = clock or cloud.clock
        self.interval = interval
        self.max_interval = max(max_interval, interval)
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self._tags = tuple(tags)
        self._narrow = True  # list with tags-any while every waiter names a tag (off once the cloud refuses it)
        self._cond = threading.Condition()
        self._waiters: dict[str, int] = {}  # load balancer id -> swaps waiting on it
        self._tag_of: dict[str, str] = {}  # load balancer id -> the tag of its own a listing may narrow to
        self._seen: dict[str, tuple[int, LBSummary | CloudError]] = {}  # id -> (read number, what it found)
        self._direct: dict[str, _Direct] = {}  # ids the listing did not show
        self._untagged: set[str] = set()  # ids a listing did not show though they existed: never listed again
        self._reads = 0  # reads begun so far: a waiter takes only what a read begun after it started found
        self._list_at = -math.inf  # when the next list call is due
        self._list_delay = interval
        self._reading = False

    # --- what a swap calls ----------------------------------------------------------------------------

    def statuses(
        self,
        lb_id: str,
        timeout: float,
        check: Callable[[], None] = lambda: None,
        *,
        tag: str | None = None,
        listed: bool = True,
    ) -> Iterator[LBSummary]:
        """A fresh summary of ``lb_id`` from each read that began after the previous one was taken (the first: a
        read begun after this call), until ``timeout`` seconds passed on the clock (at least one read is made
        first; when every read failed transiently, the wait ends at the timeout like any other).
        ``check`` runs before every wait (it raises to stop). ``tag``: one of ``lb_id``'s own tags (besides the
        watcher's), that a listing may narrow to (see the module doc). ``listed=False``: ``lb_id`` does not carry
        the watcher's tags (a source, not a clone): it is read on its own from the start.

        :raises CloudError: a read of this load balancer failed other than transiently (``NotFound``: gone).
        """
        deadline = self.clock.now() + timeout
        with self._cond:
            self._waiters[lb_id] = self._waiters.get(lb_id, 0) + 1
            if tag:
                self._tag_of[lb_id] = tag
            if (not listed or lb_id in self._untagged) and lb_id not in self._direct:  # never tagged later
                self._direct[lb_id] = _Direct(due=-math.inf, delay=self.poll_initial)
            after = self._reads
        try:
            first = True
            while True:
                got = self._next(lb_id, after, deadline, check, read_once=first)
                if got is None:
                    return
                after, found = got
                if isinstance(found, CloudError):
                    raise copy.copy(found)  # each waiter its own: steps add the swap and step to an error
                first = False
                yield found
        finally:
            self._leave(lb_id)

    def calls_due(self) -> float:
        """When the next read is due on the clock (for tests and benchmarks); infinity with nobody waiting."""
        with self._cond:
            return self._due()

    def waiting(self) -> int:
        """How many waits are in progress (for tests and benchmarks)."""
        with self._cond:
            return sum(self._waiters.values())

    # --- the shared reads ---------------------------------------------------------------------------------

    def _leave(self, lb_id: str) -> None:
        with self._cond:
            left = self._waiters.get(lb_id, 1) - 1
            if left > 0:
                self._waiters[lb_id] = left
                return
            self._waiters.pop(lb_id, None)
            self._tag_of.pop(lb_id, None)
            self._seen.pop(lb_id, None)
            self._direct.pop(lb_id, None)  # a later wait starts its backoff afresh, as a poll loop did

    def _next(
        self, lb_id: str, after: int, deadline: float, check: Callable[[], None], *, read_once: bool
    ) -> tuple[int, LBSummary | CloudError] | None:
        """The first read of ``lb_id`` numbered above ``after``, or None once ``deadline`` passed (with
        ``read_once``: and a read was begun after ``after``, even one that failed transiently)."""
        while True:
            check()
            with self._cond:
                seen = self._seen.get(lb_id)
                if seen is not None and seen[0] > after:
                    return seen
                bound = None if read_once and self._reads <= after else deadline
                if bound is not None and self.clock.now() >= bound:
                    return None
                if self._reading:  # another swap's thread reads: wait for what it finds
                    self._cond.wait(WAKE)
                    continue
                self._reading = True
            try:
                self._lead(bound)
            finally:
                with self._cond:
                    self._reading = False
                    self._cond.notify_all()

    def _due(self) -> float:
        """When the next read is due: the next list call if anyone waits on an id it may show (at once without
        a listing: an id not seen yet is read on its own), else the earliest read of an id on its own."""
        due = math.inf
        if any(i not in self._direct for i in self._waiters):
            due = self._list_at if self._tags else -math.inf
        return min([due, *(d.due for i, d in self._direct.items() if i in self._waiters)])

    def _lead(self, deadline: float | None) -> None:
        """Sleep until a read is due (at most one interval at a time, so that new waiters are seen), then
        make the reads that are due."""
        with self._cond:
            due = self._due()
        now = self.clock.now()
        if due > now:
            until = min(due, now + self.interval, deadline if deadline is not None else math.inf)
            self.clock.sleep(until - now)
            if self.clock.now() < due:
                return
        self._read()

    def _read(self) -> None:
        now = self.clock.now()
        with self._cond:
            self._reads += 1
            number = self._reads
            waiting = set(self._waiters)
            unlisted = {i for i in waiting if i not in self._direct}
            list_due = bool(self._tags and unlisted and now >= self._list_at)
            direct = {i for i in waiting if i in self._direct and self._direct[i].due <= now}
            narrow = {self._tag_of.get(i, "") for i in unlisted} if self._narrow else {""}
        found: dict[str, LBSummary | CloudError] = {}
        if list_due:
            direct |= self._list(now, unlisted, found, sorted(narrow) if "" not in narrow else [])
        elif not self._tags:
            direct |= unlisted
        for lb_id in sorted(direct):
            self._get(lb_id, now, found)
            if lb_id in unlisted and isinstance(found.get(lb_id), LBSummary):
                self._untagged.add(lb_id)
        with self._cond:
            for lb_id, value in found.items():
                if lb_id in self._waiters:
                    self._seen[lb_id] = (number, value)
            self._cond.notify_all()

    def _list(
        self, now: float, unlisted: set[str], found: dict[str, LBSummary | CloudError], narrow: list[str]
    ) -> set[str]:
        """One list call for every waiter not known to be read on its own (with ``narrow``, the waiters' own tags:
        one per ``TAGS_PER_LIST`` of them, each asking for those only); returns the waiters it did not show."""
        try:
            if narrow:
                listing = []
                for start in range(0, len(narrow), TAGS_PER_LIST):
                    part = narrow[start : start + TAGS_PER_LIST]
                    listing += self.cloud.list_load_balancers(tags=list(self._tags), tags_any=part)
            else:
                listing = self.cloud.list_load_balancers(tags=list(self._tags))
        except CloudError as exc:
            if transient(exc):
                self._list_delay = min(self._list_delay * 2, self.max_interval)
                self._list_at = now + self._list_delay
                LOG.debug("status listing failed, next in %.1f s: %s", self._list_delay, exc)
                return set()
            if narrow:  # an API without tags-any: list every clone of the campaign, at once
                LOG.warning("load balancers cannot be listed by tags-any (%s): listing by tag only", exc)
                self._narrow = False
                return self._list(now, unlisted, found, [])
            LOG.warning("load balancers cannot be listed by tag (%s): each wait polls on its own", exc)
            self._tags = ()
            return unlisted
        self._list_delay = self.interval
        self._list_at = now + self.interval
        by_id = {lb.id: lb for lb in listing}
        for lb_id in unlisted & set(by_id):
            found[lb_id] = by_id[lb_id]
        return unlisted - set(by_id)

    def _get(self, lb_id: str, now: float, found: dict[str, LBSummary | CloudError]) -> None:
        state = self._direct.get(lb_id) or _Direct(due=now, delay=self.poll_initial)
        state.due = now + state.delay
        state.delay = min(state.delay * 1.5, self.poll_max)
        with self._cond:
            if lb_id in self._waiters:
                self._direct[lb_id] = state
        try:
            found[lb_id] = self.cloud.get_load_balancer(lb_id)
        except CloudError as exc:
            if not transient(exc):
                found[lb_id] = exc
