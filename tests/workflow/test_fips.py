"""fips.compare_and_swap, the one floating IP move that the flip, the move back and recover share: the exact
sequence of reads and If-Match PUTs, what a 412 and a timeout do, and when it gives up. A scripted cloud stands
in for the REST boundary."""

from __future__ import annotations

from typing import Any, cast

import pytest

from lbswap.clouds.base import Cloud
from lbswap.errors import CloudTimeout, FloatingIPHijacked, NotFound, PreconditionFailed, SwapFailed
from lbswap.model import FloatingIP, LoadBalancer
from lbswap.workflow.context import SwapContext, SwapOptions
from lbswap.workflow.fips import Target, compare_and_swap, move_back


def fip(port: str, revision: int) -> FloatingIP:
    return FloatingIP("f-1", "203.0.113.5", port, "10.0.0.5", revision)


class Scripted:
    """Reads return the floating IPs given, in order; each PUT raises the next error given (None: succeeds)."""

    def __init__(self, reads: list[FloatingIP | Exception], puts: list[Exception | None]) -> None:
        self.reads, self.puts = reads, puts
        self.calls: list[tuple[Any, ...]] = []

    def get_floating_ip(self, fip_id: str) -> FloatingIP:
        self.calls.append(("get", fip_id))
        read = self.reads.pop(0)
        if isinstance(read, Exception):
            raise read
        return read

    def move_floating_ip(self, fip_id: str, *, port_id: str, fixed_ip_address: str | None, if_revision: int) -> None:
        self.calls.append(("put", fip_id, port_id, if_revision))
        error = self.puts.pop(0)
        if error is not None:
            raise error


def to_clone(current: FloatingIP) -> Target | None:
    if current.port_id == "clone":
        return None
    if current.port_id != "source":
        raise FloatingIPHijacked(f"moved to {current.port_id}")
    return "clone", "10.1.0.5"


GAVE_UP = SwapFailed("kept changing")


def run(cloud: Scripted, decide: Any = to_clone, **kwargs: Any) -> FloatingIP | None:
    kwargs.setdefault("gave_up", GAVE_UP)
    return compare_and_swap(cast(Cloud, cloud), "f-1", decide, **kwargs)


def test_one_read_then_one_put_on_the_revision_read() -> None:
    cloud = Scripted([fip("source", 7)], [None])
    assert run(cloud) == fip("source", 7)
    assert cloud.calls == [("get", "f-1"), ("put", "f-1", "clone", 7)]


@pytest.mark.parametrize("error", [PreconditionFailed("412", status_code=412), CloudTimeout("timeout")])
def test_a_412_or_a_timeout_re_reads_and_our_own_move_counts_as_done(error: Exception) -> None:
    cloud = Scripted([fip("source", 7), fip("clone", 8)], [error])
    assert run(cloud) is None  # the PUT happened after all: nothing more to do
    assert cloud.calls == [("get", "f-1"), ("put", "f-1", "clone", 7), ("get", "f-1")]


def test_a_412_re_reads_and_retries_on_the_new_revision() -> None:
    cloud = Scripted([fip("source", 7), fip("source", 9)], [PreconditionFailed("412", status_code=412), None])
    assert run(cloud) == fip("source", 9)
    assert cloud.calls[-1] == ("put", "f-1", "clone", 9)


def test_someone_elses_move_found_on_the_re_read_is_refused_without_a_put() -> None:
    cloud = Scripted([fip("source", 7), fip("other", 8)], [PreconditionFailed("412", status_code=412)])
    with pytest.raises(FloatingIPHijacked):
        run(cloud)
    assert [c[0] for c in cloud.calls] == ["get", "put", "get"]


def test_gives_up_after_the_attempts() -> None:
    cloud = Scripted([fip("source", n) for n in range(5)], [PreconditionFailed("412", status_code=412)] * 5)
    with pytest.raises(SwapFailed, match="kept changing"):
        run(cloud)
    assert len(cloud.calls) == 10
    quiet = Scripted([fip("source", n) for n in range(5)], [PreconditionFailed("412", status_code=412)] * 5)
    assert run(quiet, gave_up=None) is None


def test_a_known_read_and_one_attempt_puts_at_once_and_a_412_gives_up() -> None:
    # recover: the floating IP was read with the graph just before; a 412 means someone else moved it since
    cloud = Scripted([], [PreconditionFailed("412", status_code=412)])
    changed = FloatingIPHijacked("changed while recovering")
    with pytest.raises(FloatingIPHijacked, match="recovering"):
        run(cloud, gave_up=changed, attempts=1, known=fip("source", 3), retry_on=(PreconditionFailed,))
    assert cloud.calls == [("put", "f-1", "clone", 3)]


def test_an_error_outside_retry_on_propagates() -> None:
    cloud = Scripted([], [CloudTimeout("timeout")])
    with pytest.raises(CloudTimeout):
        run(cloud, attempts=1, known=fip("source", 3), retry_on=(PreconditionFailed,))


def test_a_deleted_floating_ip_raises_unless_gone_is_given() -> None:
    with pytest.raises(NotFound):
        run(Scripted([NotFound("gone", status_code=404)], []))
    seen: list[str] = []
    assert run(Scripted([NotFound("gone", status_code=404)], []), gone=lambda: seen.append("gone")) is None
    assert seen == ["gone"]


def test_decide_leaving_it_alone_makes_no_put() -> None:
    cloud = Scripted([fip("clone", 7)], [])
    assert run(cloud) is None
    assert cloud.calls == [("get", "f-1")]


# --- move_back: what it leaves alone is named -----------------------------------------------------------------


class _Clock:
    def now(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        raise AssertionError("move_back never sleeps")


def _source_with(*fips: FloatingIP) -> LoadBalancer:
    return LoadBalancer(
        id="lb-1", name="web", vip_subnet_id="s-1", vip_address="10.0.0.5", vip_port_id="source", floating_ips=fips
    )


@pytest.mark.parametrize("error", [PreconditionFailed("412", status_code=412), CloudTimeout("timeout")])
def test_move_back_that_gives_up_names_the_floating_ip_and_goes_on(error: Exception) -> None:
    """Five 412s (or timeouts) in a row on the first floating IP: it may still point at the clone, so it is
    named for the operator; the second floating IP is still moved back."""
    other = FloatingIP("f-2", "203.0.113.6", "source", "10.0.0.5", 3)
    cloud = Scripted(
        [fip("clone", n) for n in range(5)] + [FloatingIP("f-2", "203.0.113.6", "clone", "x", 4)], [error] * 5 + [None]
    )
    cloud.clock = _Clock()  # type: ignore[attr-defined]
    recorded: list[dict[str, Any]] = []
    ctx = SwapContext(cast(Cloud, cloud), "c-1", "lb-1", "web", SwapOptions(), record_flip=recorded.append)
    left = move_back(ctx, _source_with(fip("source", 0), other), {"f-1": ("clone", None), "f-2": ("clone", None)})
    assert left == [
        "203.0.113.5 (the move back to port source gave up after 5 attempts, each a 412 or a timeout: "
        "it may still point at the clone)"
    ]
    assert [c[0] for c in cloud.calls] == ["get", "put"] * 5 + ["get", "put"]
    assert [(f["floating_ip_address"], f["to_port"]) for f in recorded] == [("203.0.113.6", "source")]


def test_move_back_names_a_floating_ip_someone_else_moved_or_deleted() -> None:
    cloud = Scripted([fip("elsewhere", 4), NotFound("gone", status_code=404)], [])
    cloud.clock = _Clock()  # type: ignore[attr-defined]
    ctx = SwapContext(cast(Cloud, cloud), "c-1", "lb-1", "web", SwapOptions())
    other = FloatingIP("f-2", "203.0.113.6", "source", "10.0.0.5", 3)
    left = move_back(ctx, _source_with(fip("source", 0), other), {"f-1": ("clone", None), "f-2": ("clone", None)})
    assert left == ["203.0.113.5 (now on port elsewhere, not ours)", "203.0.113.6 (deleted by someone else)"]
    assert [c[0] for c in cloud.calls] == ["get", "get"]
