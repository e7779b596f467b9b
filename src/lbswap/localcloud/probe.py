"""A probe of new connections through a floating IP, and what it tells about a move.

``python -m lbswap.localcloud.probe ADDRESS`` (run inside a client namespace) opens a new TCP connection at a
steady rate, sends one HTTP/1.0 GET and records when it started and ended (``time.monotonic()``: the system's
monotonic clock, the same in every process of the host, so the caller can set its own timestamps beside them)
and what answered: the member's page names the member, so the body tells which load balancer served. It prints
``ready`` when it starts and writes the records as JSON to ``--out`` when done: after ``--duration`` seconds, or
sooner on SIGTERM (it then opens no new connection and waits for those under way).

``analyze`` turns the records and the times of a ``PUT /v2.0/floatingips/{id}`` into the figures of a move:
failed connections, the longest gap between answers, and when new connections switched to the target.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 2.0
MAX_DURATION = 300.0  # a whole swap through lbswap, clone creation included, on a loaded machine


@dataclass(frozen=True)
class Record:
    start: float
    end: float
    ok: bool
    answer: str  # the body's last line when ok, else the error


def get(address: str, port: int, timeout: float = TIMEOUT) -> tuple[bool, str]:
    """One new connection, one GET: (ok, the body's last line or the error)."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: lbswap-probe\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    except OSError as e:
        return False, f"{type(e).__name__}: {e}"
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    lines = body.decode(errors="replace").strip().splitlines()
    if " 200 " not in f"{status} ":
        return False, status or "no answer"
    return True, lines[-1] if lines else ""


def probe(
    address: str, port: int, rate: float, duration: float, workers: int = 8, stop: threading.Event | None = None
) -> list[Record]:
    """New connections every 1/rate seconds for duration seconds (bounded: rate * duration connections), or
    until ``stop`` is set."""
    stop = stop or threading.Event()
    total = int(rate * duration)
    start = time.monotonic() + 0.05
    records: list[Record | None] = [None] * total
    lock = threading.Lock()
    next_index = [0]

    def work() -> None:
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= total or stop.is_set():
                return
            delay = start + i / rate - time.monotonic()
            if delay > 0 and stop.wait(delay):
                return
            began = time.monotonic()
            ok, answer = get(address, port)
            records[i] = Record(began, time.monotonic(), ok, answer)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in records if r is not None]


@dataclass(frozen=True)
class Move:
    """What the probe saw of one floating IP move."""

    connections: int
    failed: int
    longest_gap: float  # the longest time without an answer while the probe was opening connections (its spacing
    # included; the tail after the last connection started is not a gap)
    switched_at: float | None  # start of the first connection from which every answer came from the target
    served_by_target_after: int  # answers from the target after switched_at
    source_after_answer: int  # answers from the source among connections started after the API answered

    def delay_after(self, at: float) -> float | None:
        return None if self.switched_at is None else self.switched_at - at


def analyze(records: Sequence[Record], target: str, api_answered: float) -> Move:
    """The figures of a move to the member that answers `target`, the PUT answered at api_answered."""
    ordered = sorted(records, key=lambda r: r.start)
    ok = [r for r in ordered if r.ok]
    last_start = ordered[-1].start if ordered else 0.0
    ends = sorted(min(r.end, last_start) for r in ok)
    gap = max((b - a for a, b in itertools.pairwise(ends)), default=0.0)
    switched: float | None = None
    for r in reversed(ok):
        if r.answer != target:
            break
        switched = r.start
    after = [r for r in ok if switched is not None and r.start >= switched]
    return Move(
        connections=len(ordered),
        failed=len(ordered) - len(ok),
        longest_gap=gap,
        switched_at=switched,
        served_by_target_after=len(after),
        source_after_answer=sum(1 for r in ok if r.start >= api_answered and r.answer != target),
    )


def in_named_namespace() -> bool:
    """Whether this process runs in a namespace made with `ip netns` (the client's), not the host's own."""
    own = os.stat("/proc/self/ns/net").st_ino
    netns = Path("/run/netns")
    return netns.is_dir() and any(os.stat(p).st_ino == own for p in netns.iterdir())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("address")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--rate", type=float, default=150.0, help="new connections per second")
    parser.add_argument("--duration", type=float, default=6.0, help=f"seconds (at most {MAX_DURATION:.0f})")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not in_named_namespace():
        parser.error("run it inside the client's namespace (ip netns exec): the host's routes lead off the host")
    duration = min(args.duration, MAX_DURATION)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    print("ready", flush=True)
    records = probe(args.address, args.port, args.rate, duration, stop=stop)
    args.out.write_text(json.dumps([[r.start, r.end, r.ok, r.answer] for r in records]))
    return 0


def load(path: Path) -> list[Record]:
    return [Record(float(s), float(e), bool(ok), str(a)) for s, e, ok, a in json.loads(path.read_text())]


if __name__ == "__main__":
    sys.exit(main())
