"""One status watcher serves many waiting swaps from one list call per interval (clouds/watch.py). On the fake,
whose clock is simulated: nothing here sleeps in real time."""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lbswap import clone
from lbswap.clouds import fake, watch
from lbswap.clouds.watch import StatusWatcher
from lbswap.errors import CloudError, NotFound
from lbswap.model import MARKER_CAMPAIGN, MARKER_CLONE_OF, LBSummary

CAMPAIGN = "c1"
TAGS = [MARKER_CAMPAIGN + CAMPAIGN]
LATENCY = 21.0
INTERVAL = 2.0


class Counting:
    """The fake with its calls recorded as (simulated time, call); ``fail`` decides which calls fail."""

    def __init__(self, cloud: fake.FakeCloud) -> None:
        self.cloud = cloud
        self.calls: list[tuple[float, str]] = []
        self.fail: Callable[[str], CloudError | None] = lambda call: None
        self.gate: Callable[[], None] | None = None  # run before the first call
        self.listings: list[tuple[list[str], int]] = []  # each list call's tags-any, and how many it returned
        self._lock = threading.Lock()

    @property
    def clock(self) -> Any:
        return self.cloud.clock

    def _record(self, call: str) -> None:
        if not self.calls and self.gate is not None:
            self.gate()
        with self._lock:
            self.calls.append((self.cloud.clock.now(), call))
            error = self.fail(call)
        if error is not None:
            raise error

    def list_load_balancers(self, **kwargs: Any) -> list[LBSummary]:
        self._record("list" if not kwargs.get("tags_any") else "list-any")
        found = self.cloud.list_load_balancers(**kwargs)
        with self._lock:
            self.listings.append((list(kwargs.get("tags_any", ())), len(found)))
        return found

    def get_load_balancer(self, lb_id: str) -> LBSummary:
        self._record("get")
        return self.cloud.get_load_balancer(lb_id)

    def count(self, call: str) -> int:
        return sum(1 for _at, c in self.calls if c == call)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("watch") / "cloud.json"
    fake.seed_sample(path, 50)
    return path


@pytest.fixture
def cloud(seeded: Path, tmp_path: Path) -> fake.FakeCloud:
    path = tmp_path / "cloud.json"
    path.write_bytes(seeded.read_bytes())
    fake.set_faults(path, latency=LATENCY)
    return fake.FakeCloud(path)


def clones(cloud: fake.FakeCloud, n: int) -> list[str]:
    """``n`` clones of this campaign, created now (PENDING_CREATE for LATENCY simulated seconds)."""
    sources = sorted(cloud.list_load_balancers(), key=lambda s: s.name)[:n]
    return [
        cloud.create_load_balancer(clone.build_clone_body(cloud.read_graph(s.id), campaign_id=CAMPAIGN)).id
        for s in sources
    ]


def wait_all(
    watcher: StatusWatcher, ids: list[str], timeout: float = 600.0, tags: dict[str, str] | None = None
) -> dict[str, float]:
    """One thread per id waits until it is ACTIVE, as a swap does (naming its tag in ``tags``, as a swap names
    its clone's clone-of marker); returns when (simulated) each noticed."""
    noticed: dict[str, float] = {}
    errors: list[BaseException] = []

    def wait(lb_id: str) -> None:
        try:
            for summary in watcher.statuses(lb_id, timeout, tag=(tags or {}).get(lb_id)):
                if summary.provisioning_status == "ACTIVE":
                    noticed[lb_id] = watcher.clock.now()
                    return
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    if isinstance(watcher.cloud, Counting):  # the first read waits until every swap waits (as in a campaign)
        watcher.cloud.gate = lambda: all_waiting(watcher, len(ids))
    threads = [threading.Thread(target=wait, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert set(noticed) == set(ids), "every waiter was woken"
    return noticed


def all_waiting(watcher: StatusWatcher, n: int) -> None:
    """Until ``n`` waits are in progress (thread start-up is not simulated time: without this, a thread that
    starts late would wait for a read of its own)."""
    pause = threading.Event()
    for _ in range(10_000):
        if watcher.waiting() >= n:
            return
        pause.wait(0.001)
    raise AssertionError(f"{watcher.waiting()} of {n} swaps waiting")


@pytest.mark.parametrize("waiting", [1, 10, 50])
def test_calls_per_interval_do_not_grow_with_the_waiting_swaps(cloud: fake.FakeCloud, waiting: int) -> None:
    ids = clones(cloud, waiting)
    counting = Counting(cloud)
    watcher = StatusWatcher(counting, tags=TAGS, interval=INTERVAL)  # type: ignore[arg-type]
    start = cloud.clock.now()
    noticed = wait_all(watcher, ids)
    ready = start + LATENCY
    assert counting.count("get") == 0, "every clone was served by the listing"
    # one list call per interval, whatever the number of swaps waiting: at most one in any interval's window
    times = sorted(at for at, _call in counting.calls)
    assert all(b - a >= INTERVAL for a, b in itertools.pairwise(times)), times
    assert len(times) == math.ceil(LATENCY / INTERVAL) + 1, times
    # a clone that turned ACTIVE is noticed within one interval
    assert all(ready <= at <= ready + INTERVAL for at in noticed.values()), (ready, noticed)


def test_transient_errors_of_the_listing_back_off_then_the_interval_returns(cloud: fake.FakeCloud) -> None:
    ids = clones(cloud, 3)
    counting = Counting(cloud)
    failures = iter(range(3))
    counting.fail = lambda call: (
        CloudError("503", status_code=503) if call == "list" and next(failures, None) is not None else None
    )
    watcher = StatusWatcher(counting, tags=TAGS, interval=INTERVAL, max_interval=8.0)  # type: ignore[arg-type]
    wait_all(watcher, ids)
    times = [at for at, call in counting.calls if call == "list"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # failed at 0, 4 and 12; listed at 20 (still pending) and, one interval later, 22 (ACTIVE since 21)
    assert gaps == [4.0, 8.0, 8.0, INTERVAL], (
        counting.calls,
        "doubled after each error up to the longest, then one interval",
    )
    assert counting.count("get") == 0


def test_a_listing_refused_by_the_cloud_turns_into_polling_each_load_balancer(cloud: fake.FakeCloud) -> None:
    ids = clones(cloud, 2)
    counting = Counting(cloud)
    counting.fail = lambda call: CloudError("400 tags", status_code=400) if call == "list" else None
    watcher = StatusWatcher(counting, tags=TAGS, interval=INTERVAL, poll_initial=1.0, poll_max=4.0)  # type: ignore[arg-type]
    wait_all(watcher, ids)
    assert counting.count("list") == 1, "refused once, not asked again"
    assert counting.count("get") > 2


def test_a_load_balancer_without_the_tag_is_polled_on_its_own_with_backoff(cloud: fake.FakeCloud) -> None:
    source = sorted(cloud.list_load_balancers(), key=lambda s: s.name)[0]
    cloud.failover_load_balancer(source.id)  # PENDING_UPDATE for LATENCY seconds; a source has no campaign tag
    counting = Counting(cloud)
    watcher = StatusWatcher(counting, tags=TAGS, interval=INTERVAL, poll_initial=1.0, poll_max=4.0)  # type: ignore[arg-type]
    start = cloud.clock.now()
    wait_all(watcher, [source.id])
    gets = [at - start for at, call in counting.calls if call == "get"]
    assert counting.count("list") == 1, "listed once, then known to be outside the listing"
    assert gets[:6] == [0.0, 1.0, 2.5, 4.75, 8.125, 12.125], "each delay 1.5 times the last, up to poll_max"
    assert LATENCY <= gets[-1] <= LATENCY + 4.0, gets
    # known to be outside the listing now: a later wait on it reads it at once, on its own, and lists nothing
    counting.calls.clear()
    assert next(watcher.statuses(source.id, 60)).provisioning_status == "ACTIVE"
    assert [call for _at, call in counting.calls] == ["get"]


def test_a_deleted_load_balancer_reaches_its_waiter_as_not_found(cloud: fake.FakeCloud) -> None:
    [lb_id] = clones(cloud, 1)
    watcher = StatusWatcher(cloud, tags=TAGS, interval=INTERVAL)
    cloud.clock.sleep(LATENCY)
    cloud.delete_load_balancer(lb_id)
    cloud.clock.sleep(LATENCY)
    with pytest.raises(NotFound):
        next(watcher.statuses(lb_id, 60))


def test_a_waiter_gets_only_what_a_read_begun_after_it_started_found(cloud: fake.FakeCloud) -> None:
    """A read from before a side effect must not answer a wait that follows it (fresh reads only)."""
    [lb_id] = clones(cloud, 1)
    cloud.clock.sleep(LATENCY)
    counting = Counting(cloud)
    watcher = StatusWatcher(counting, tags=TAGS, interval=INTERVAL)  # type: ignore[arg-type]
    first = watcher.statuses(lb_id, 60)
    assert next(first).provisioning_status == "ACTIVE"
    cloud.rename_load_balancer(lb_id, "renamed")  # PENDING_UPDATE now; ``first`` still waits
    second = watcher.statuses(lb_id, 60)
    assert next(second).provisioning_status == "PENDING_UPDATE"
    assert counting.count("list") == 2
    first.close()
    second.close()


def test_a_timeout_ends_the_wait_after_at_least_one_read(cloud: fake.FakeCloud) -> None:
    [lb_id] = clones(cloud, 1)
    watcher = StatusWatcher(cloud, tags=TAGS, interval=INTERVAL)
    start = cloud.clock.now()
    seen = [s.provisioning_status for s in watcher.statuses(lb_id, 5.0)]
    assert seen and set(seen) == {"PENDING_CREATE"}
    assert start + 5.0 <= cloud.clock.now() <= start + 5.0 + INTERVAL
    assert [s.provisioning_status for s in watcher.statuses(lb_id, 0.0)] == ["PENDING_CREATE"]


def test_a_stop_asked_for_ends_every_wait(cloud: fake.FakeCloud) -> None:
    [lb_id] = clones(cloud, 1)
    watcher = StatusWatcher(cloud, tags=TAGS, interval=INTERVAL)

    class Stop(BaseException):
        pass

    def check() -> None:
        if cloud.clock.now() > 5.0 + start:
            raise Stop

    start = cloud.clock.now()
    with pytest.raises(Stop):
        for _summary in watcher.statuses(lb_id, 600.0, check):
            pass
    assert watcher.calls_due() == math.inf, "nobody waits any more"


def test_a_wait_whose_every_read_fails_transiently_still_ends_at_its_timeout(cloud: fake.FakeCloud) -> None:
    [lb_id] = clones(cloud, 1)
    counting = Counting(cloud)
    counting.fail = lambda call: CloudError("503", status_code=503)  # the API stays down, reads never land
    watcher = StatusWatcher(counting, tags=TAGS, interval=INTERVAL, max_interval=8.0)  # type: ignore[arg-type]
    start = cloud.clock.now()
    assert list(watcher.statuses(lb_id, 30.0)) == []
    assert counting.calls, "at least one read was tried"
    assert start + 30.0 <= cloud.clock.now() <= start + 30.0 + 8.0, "ended at the timeout, not when the API healed"


def clone_of(cloud: fake.FakeCloud, ids: list[str]) -> dict[str, str]:
    """Each clone's clone-of marker: the tag a swap names when it waits on its clone."""
    return {lb.id: MARKER_CLONE_OF + str(lb.clone_of) for lb in cloud.list_load_balancers(tags=TAGS) if lb.id in ids}


def test_a_listing_asks_only_for_the_clones_waited_on_not_those_of_swaps_that_ended(cloud: fake.FakeCloud) -> None:
    """A clone keeps the campaign's marker after its swap ended: listed by it alone, every interval's listing
    returns every clone built so far. Narrowed by the waiters' clone-of markers (tags-any), it returns them."""
    sources = sorted(cloud.list_load_balancers(), key=lambda s: s.name)[6:9]
    ended = clones(cloud, 6)  # of six other sources
    cloud.clock.sleep(LATENCY)  # their swaps are over: ACTIVE, still tagged with the campaign's marker
    ids = [
        cloud.create_load_balancer(clone.build_clone_body(cloud.read_graph(s.id), campaign_id=CAMPAIGN)).id
        for s in sources
    ]
    counting = Counting(cloud)
    watcher = StatusWatcher(counting, tags=TAGS, interval=INTERVAL)  # type: ignore[arg-type]
    tags = clone_of(cloud, ids)
    wait_all(watcher, ids, tags=tags)
    assert counting.count("get") == counting.count("list") == 0
    assert counting.listings and all(set(a) <= set(tags.values()) for a, _n in counting.listings)
    assert sorted(counting.listings[-1][0]) == sorted(tags.values()), "the last read: every swap waits"
    assert all(n == len(a) for a, n in counting.listings), "the clones waited on, not the six that ended"

    counting.listings.clear()  # the same wait without the tags: every clone of the campaign, every interval
    cloud.rename_load_balancer(ids[0], "renamed")
    wait_all(StatusWatcher(counting, tags=TAGS, interval=INTERVAL), ids[:1])  # type: ignore[arg-type]
    assert {n for _a, n in counting.listings} == {len(ended) + len(ids)}


def test_more_waiters_than_one_listing_names_take_one_list_call_per_part(
    cloud: fake.FakeCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "TAGS_PER_LIST", 4)
    ids = clones(cloud, 10)
    counting = Counting(cloud)
    watcher = StatusWatcher(counting, tags=TAGS, interval=INTERVAL)  # type: ignore[arg-type]
    noticed = wait_all(watcher, ids, tags=clone_of(cloud, ids))
    assert counting.count("get") == 0
    assert all(len(a) <= 4 for a, _n in counting.listings), counting.listings
    last_read = counting.listings[-3:]  # every swap waits by then: ten tags in three calls
    assert sorted(len(a) for a, _n in last_read) == [2, 4, 4] and len({t for a, _n in last_read for t in a}) == 10
    assert max(noticed.values()) - min(noticed.values()) == 0, "every part of a read answers at once"


def test_a_cloud_refusing_tags_any_is_listed_by_tag_only(cloud: fake.FakeCloud) -> None:
    ids = clones(cloud, 3)
    counting = Counting(cloud)
    counting.fail = lambda call: CloudError("400 tags-any", status_code=400) if call == "list-any" else None
    watcher = StatusWatcher(counting, tags=TAGS, interval=INTERVAL)  # type: ignore[arg-type]
    wait_all(watcher, ids, tags=clone_of(cloud, ids))
    assert counting.count("list-any") == 1, "refused once, not asked again"
    assert counting.count("list") == math.ceil(LATENCY / INTERVAL) + 1 and counting.count("get") == 0


def test_a_source_not_listed_is_read_on_its_own_from_the_first_read(cloud: fake.FakeCloud) -> None:
    source = sorted(cloud.list_load_balancers(), key=lambda s: s.name)[0]
    cloud.failover_load_balancer(source.id)
    counting = Counting(cloud)
    watcher = StatusWatcher(counting, tags=TAGS, interval=INTERVAL, poll_initial=1.0, poll_max=4.0)  # type: ignore[arg-type]
    seen = [s.provisioning_status for s in watcher.statuses(source.id, 600.0, listed=False)]
    assert seen[0] == "PENDING_UPDATE" and "ACTIVE" in seen
    assert counting.count("list") == counting.count("list-any") == 0 and counting.count("get") >= 2
