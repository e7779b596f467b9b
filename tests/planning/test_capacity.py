"""capacity: what the clones in flight at once need against what the cloud has free."""

from __future__ import annotations

import pytest

from lbswap.planning.capacity import CloneNeed, amphorae, at_once, subnet_shortfalls


@pytest.mark.parametrize(("topology", "count"), [("SINGLE", 1), ("ACTIVE_STANDBY", 2), ("", 1)])
def test_amphorae(topology: str, count: int) -> None:
    assert amphorae(topology) == count


@pytest.mark.parametrize(
    ("subnets", "topology", "addresses"),
    [
        (("a",), "SINGLE", {"a": 2}),
        (("a",), "ACTIVE_STANDBY", {"a": 3}),
        (("a", "b"), "SINGLE", {"a": 2, "b": 1}),  # the VRRP ports sit on the main VIP's subnet
        (("a", "b"), "ACTIVE_STANDBY", {"a": 3, "b": 1}),
        (("a", "a"), "SINGLE", {"a": 3}),  # an additional VIP on the main subnet
        (("a", "b", "b"), "ACTIVE_STANDBY", {"a": 3, "b": 2}),
    ],
)
def test_clone_need_addresses(subnets: tuple[str, ...], topology: str, addresses: dict[str, int]) -> None:
    assert CloneNeed("lb", subnets, topology).addresses() == addresses


@pytest.mark.parametrize(
    ("parallel", "max_creating", "expected"),
    [(5, None, 5), (5, 3, 3), (2, 3, 2), (0, None, 1), (5, 0, 5), (1, 1, 1), (-1, None, 1)],
)
def test_at_once(parallel: int, max_creating: int | None, expected: int) -> None:
    assert at_once(parallel, max_creating) == expected


def singles(count: int, subnet: str = "a") -> list[CloneNeed]:
    return [CloneNeed(f"lb-{i}", (subnet,), "SINGLE") for i in range(count)]


@pytest.mark.parametrize(
    ("needs", "free", "in_flight", "short"),
    [
        (singles(10), {"a": 6}, 5, {"a": (6, 10, 3)}),  # room for 3 clones of 2 addresses
        (singles(10), {"a": 6}, 3, {}),
        (singles(10), {"a": 10}, 5, {}),
        (singles(2), {"a": 3}, 5, {"a": (3, 4, 1)}),  # at most the swaps there are
        (singles(10), {"a": None}, 5, {}),  # unknown: skipped
        (singles(10), {}, 5, {}),  # not counted at all: skipped
        (singles(3), {"a": 1}, 5, {"a": (1, 6, 0)}),  # not even one fits
        (singles(3), {"a": 5}, 0, {}),  # in_flight below 1 counts as 1
        (
            [CloneNeed("big", ("a",), "ACTIVE_STANDBY"), *singles(3)],
            {"a": 7},
            3,
            {},  # the 3 biggest: 3 + 2 + 2 = 7 fit exactly
        ),
        (
            [CloneNeed("big", ("a",), "ACTIVE_STANDBY"), *singles(3)],
            {"a": 6},
            3,
            {"a": (6, 7, 3)},  # the worst case does not fit; the 3 smallest (2 + 2 + 2) do
        ),
        (
            [CloneNeed("ds", ("a", "v6"), "SINGLE"), CloneNeed("ds2", ("a", "v6"), "SINGLE")],
            {"a": 10, "v6": 1},
            2,
            {"v6": (1, 2, 1)},
        ),
    ],
)
def test_subnet_shortfalls(
    needs: list[CloneNeed], free: dict[str, int | None], in_flight: int, short: dict[str, tuple[int, int, int]]
) -> None:
    assert subnet_shortfalls(needs, free, in_flight) == short
