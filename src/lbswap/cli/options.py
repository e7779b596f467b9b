"""Options shared by several commands and the types that check their values (a bad value is one line, exit 2)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

STRATEGIES = ("auto", "fip-swap", "failover", "recreate")


def add_selection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("selection (what to act on; why-to-rotate options narrow it)")
    group.add_argument(
        "--lb", action="append", default=[], metavar="ID_OR_NAME", help="this load balancer (repeatable)"
    )
    group.add_argument("--all", action="store_true", help="every load balancer visible to you")
    group.add_argument("--project", metavar="PROJECT_ID", help="the load balancers of this project")
    group.add_argument("--tag", metavar="TAG", help="the load balancers carrying this tag")
    group.add_argument("--provider", metavar="NAME", help="only load balancers of this provider")
    group.add_argument("--stale-image", action="store_true", help="only LBs with an amphora on an older image")
    group.add_argument(
        "--image-tag", default="amphora", help="the amphora image tag where the flavor sets none (default: amphora)"
    )
    group.add_argument("--image-owner", metavar="PROJECT_ID", help="only images of this owner (amp_image_owner_id)")
    group.add_argument("--older-than", type=non_negative_float, metavar="DAYS", help="amphorae older than DAYS")
    group.add_argument(
        "--cert-expiring-within", type=non_negative_float, metavar="DAYS", help="amphora certificates expiring soon"
    )
    group.add_argument(
        "--force", action="store_true", help="rotate even amphorae on the newest image (after a CA or key change)"
    )
    group.add_argument("--repair", action="store_true", help="load balancers in ERROR, through Octavia's failover")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of `plan` and `run`: how to swap, how fast across a fleet, what the operator consents to,
    and the checks around the flip."""
    group = parser.add_argument_group("swap")
    _add_swap_options(group)
    _add_fleet_options(group)
    _add_consent_options(group)
    _add_check_options(parser)


def _add_swap_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--strategy",
        default="auto",
        choices=STRATEGIES,
        help="auto: fip-swap where every VIP has a floating IP, else failover or recreate (see `plan`; default auto)",
    )
    group.add_argument("--target-flavor", metavar="NAME_OR_ID", help="build the clone with this Octavia flavor")
    group.add_argument("--target-az", metavar="ZONE", help="build the clone in this availability zone")
    group.add_argument("--target-provider", metavar="NAME", help="build the clone with this provider")
    group.add_argument(
        "--drain-timeout",
        type=non_negative_float,
        default=300.0,
        metavar="SECONDS",
        help="wait at most this long for the source's connections to drain (default 300)",
    )
    group.add_argument(
        "--stats-interval",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="read load balancer statistics this often: the source's while it drains (three reads in a row with "
        "no connection end the drain) and the clone's while the watch runs (default 10, Octavia's heartbeat "
        "interval: its statistics change no faster)",
    )
    group.add_argument(
        "--keep-source",
        type=non_negative_float,
        default=0.0,
        metavar="MINUTES",
        help="keep the source this long for a rollback; `finalize` retires it (default 0: retire at once)",
    )
    group.add_argument("--allow-downtime", action="store_true", help="consent to the downtime the plan states")


def _add_fleet_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--parallel", type=positive_int, default=1, metavar="N", help="swaps at once (default 1)")
    group.add_argument(
        "--canary", type=non_negative_int, default=1, metavar="N", help="swaps run alone first; a failure stops all"
    )
    group.add_argument(
        "--max-failures",
        type=non_negative_int,
        default=1,
        metavar="N",
        help="circuit breaker: start no swap after N failed or rolled back (default 1; 0 = never stop)",
    )
    group.add_argument(
        "--rate", type=positive_float, metavar="N", help="start at most N swaps per minute (pace a large fleet)"
    )
    group.add_argument("--max-creating", type=positive_int, metavar="N", help="at most N clones being built at once")


def _add_consent_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--accept-address-change",
        action="store_true",
        help="allow a fip-swap that changes an address without a floating IP in front (the plan names them)",
    )
    group.add_argument(
        "--owned-tag",
        action="append",
        default=[],
        metavar="TAG",
        help="load balancers with this tag are held by a tool of yours (repeatable): blocked unless allowed",
    )
    group.add_argument(
        "--allow-owned",
        type=owner_kinds,
        default=(),
        metavar="KIND[,KIND]",
        help="proceed with load balancers held by: kubernetes, cluster-api, heat, magnum, tagged",
    )


def _add_check_options(parser: argparse.ArgumentParser) -> None:
    check = parser.add_argument_group("verify and watch (fip-swap)")
    check.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="flip without first sending traffic through the clone on a temporary floating IP",
    )
    check.add_argument("--verify-path", default="/", metavar="PATH", help="HTTP path the verify requests (default /)")
    check.add_argument("--verify-host", metavar="NAME", help="Host header and TLS SNI the verify sends")
    check.add_argument(
        "--verify-udp-payload", metavar="TEXT", help="a datagram a UDP listener answers (else UDP is not verified)"
    )
    check.add_argument(
        "--settle-timeout",
        type=non_negative_float,
        default=10.0,
        metavar="SECONDS",
        help="after the flip, wait at most this long until new connections through each floating IP reach the "
        "clone, where the backend can tell (a data plane follows its API late); still on the source: flip back "
        "(default 10; 0: do not wait)",
    )
    check.add_argument(
        "--watch",
        type=non_negative_float,
        default=60.0,
        metavar="SECONDS",
        help="after the flip, watch the clone this long and flip back by itself if it fails (default 60; 0: off)",
    )
    check.add_argument(
        "--watch-max-errors",
        type=non_negative_int,
        default=2,
        metavar="N",
        help="the watch flips back once request errors plus failed probes pass N (default 2)",
    )


def add_fault_options(parser: argparse.ArgumentParser) -> None:
    """publish-image: an image whose amphorae show a fault (fake: to the modeled probe; local: to real packets)."""
    parser.add_argument(
        "--fault",
        choices=("refuse", "http-503", "reset", "stall"),
        help="publish-image: every amphora booted from it refuses, answers 503, resets or stalls its listeners",
    )
    parser.add_argument(
        "--fault-after",
        type=non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="publish-image: the fault shows only this long after the amphora started",
    )


def finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):  # inf and nan parse as floats but would end up in the journal as non-JSON
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def non_negative_float(text: str) -> float:
    value = finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number above 0")
    return value


def subnet_free(text: str) -> tuple[str, int]:
    subnet, sep, count = text.partition("=")
    if not sep or not subnet or not count.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give SUBNET_ID=N, N a whole number")
    return subnet, int(count)


def owner_kinds(text: str) -> tuple[str, ...]:
    from lbswap.planning.owners import KINDS

    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(KINDS)}")
    return kinds


def probability(text: str) -> float:
    value = finite(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def whole_number(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be {minimum} or more")
        return value

    return parse


non_negative_int = whole_number(0)
positive_int = whole_number(1)
