"""The traffic probe: new TCP connections (one HTTP request each) at a fixed rate through each floating IP,
plus long-lived streams opened before the flip, and the downtime math over what it saw.

The math (``summarize`` and friends) is pure. The I/O runs as its own process inside the client namespace
(``python -m lbswap.lab.probe``, started and stopped by :class:`ProbeProcess`) and writes every attempt as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lbswap.errors import LbswapError

DEFAULT_RATE = 200.0  # new connections per second per floating IP
ATTEMPT_TIMEOUT = 3.0  # a connection not answered by then failed (a SYN resent after 1 s still succeeds)
SLOW_MS = 500.0
STALL_TIMEOUT = 2.0  # a long-lived stream silent this long was cut (a vanished amphora sends no FIN or RST)


@dataclass(frozen=True)
class Target:
    name: str
    address: str
    port: int

    def spec(self) -> str:
        return f"{self.name}={self.address}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Target:
        name, _, rest = text.partition("=")
        address, _, port = rest.rpartition(":")
        return cls(name, address, int(port))


@dataclass(frozen=True)
class Attempt:
    """One new connection: when it started (epoch seconds), whether a 200 came back, and who served it."""

    target: str
    t: float
    ok: bool
    latency_ms: float
    error: str = ""
    amphora: str = ""
    image: str = ""
    peer: str = ""


@dataclass(frozen=True)
class LongLived:
    """A stream opened before the flip; ``cut`` when it ended before all its data arrived."""

    target: str
    opened: float
    ended: float
    cut: bool
    received: int
    expected: int
    error: str = ""
    amphora: str = ""
    image: str = ""
    peer: str = ""


@dataclass(frozen=True)
class Summary:
    attempts: int
    failed: int
    slow: int
    longest_gap_ms: float
    max_latency_ms: float
    probe_spacing_ms: float
    long_lived_total: int
    long_lived_cut: int
    images: tuple[str, ...] = ()  # images that served, in the order they first did
    first_served: dict[str, float] = field(default_factory=dict)  # image -> first time it served


# --- the math (pure) --------------------------------------------------------------------------------------------


def longest_gap_ms(attempts: Sequence[Attempt]) -> float:
    """The longest time in which no new connection completed successfully, over the probed window (from the
    first attempt's start to the last attempt's start); the whole window when none succeeded. Dated by
    completion, so that connections rescued by a resent SYN (1 s later) do not hide an outage."""
    if not attempts:
        return 0.0
    start = min(a.t for a in attempts)
    end = max(a.t for a in attempts)
    times = sorted(a.t + a.latency_ms / 1000 for a in attempts if a.ok)
    if not times:
        return round((end - start) * 1000, 1)
    points = [start, *(t for t in times if t < end), end]
    return round(max(b - a for a, b in itertools.pairwise(points)) * 1000, 1)


def probe_spacing_ms(attempts: Sequence[Attempt]) -> float:
    """The longest time between two attempts of one target: the probe's own lag (CPU), the floor of any gap."""
    times = sorted(a.t for a in attempts)
    return round(max((b - a for a, b in itertools.pairwise(times)), default=0.0) * 1000, 1)


def served_images(attempts: Sequence[Attempt]) -> tuple[tuple[str, ...], dict[str, float]]:
    first: dict[str, float] = {}
    for a in sorted(attempts, key=lambda a: a.t):
        if a.ok and a.image and a.image not in first:
            first[a.image] = a.t
    return tuple(first), first


def summarize(attempts: Sequence[Attempt], long_lived: Sequence[LongLived]) -> Summary:
    images, first = served_images(attempts)
    return Summary(
        attempts=len(attempts),
        failed=sum(1 for a in attempts if not a.ok),
        slow=sum(1 for a in attempts if a.ok and a.latency_ms > SLOW_MS),
        longest_gap_ms=longest_gap_ms(attempts),
        max_latency_ms=max((a.latency_ms for a in attempts if a.ok), default=0.0),
        probe_spacing_ms=probe_spacing_ms(attempts),
        long_lived_total=len(long_lived),
        long_lived_cut=sum(1 for s in long_lived if s.cut),
        images=images,
        first_served=first,
    )


def by_target(attempts: Iterable[Attempt], long_lived: Iterable[LongLived]) -> dict[str, Summary]:
    names = sorted({a.target for a in attempts} | {s.target for s in long_lived})
    attempts, long_lived = list(attempts), list(long_lived)
    return {
        name: summarize([a for a in attempts if a.target == name], [s for s in long_lived if s.target == name])
        for name in names
    }


def with_images(attempts: Sequence[Attempt], peers: dict[str, str]) -> list[Attempt]:
    """Fill in the image from the peer address where the response had no header (TCP listeners)."""
    out = []
    for a in attempts:
        if not a.image and a.peer in peers:
            a = Attempt(**{**asdict(a), "image": peers[a.peer]})
        out.append(a)
    return out


def parse_response(data: bytes) -> tuple[bool, dict[str, str], str]:
    """(status 200?, lower-cased headers, body) of an HTTP/1.0 response."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    ok = len(lines[0].split()) >= 2 and lines[0].split()[1] == "200"
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return ok, headers, body.decode(errors="replace")


def _who(headers: dict[str, str], body: str) -> dict[str, str]:
    words = body.split()
    peer = words[words.index("peer") + 1] if "peer" in words[:-1] else ""
    return {"amphora": headers.get("x-lbswap-amphora", ""), "image": headers.get("x-lbswap-image", ""), "peer": peer}


# --- the I/O (runs inside the client namespace) -------------------------------------------------------------


async def _attempt(target: Target) -> Attempt:
    t0 = time.time()
    writer = None
    try:
        async with asyncio.timeout(ATTEMPT_TIMEOUT):
            reader, writer = await asyncio.open_connection(target.address, target.port)
            writer.write(b"GET / HTTP/1.0\r\nHost: probe\r\n\r\n")
            data = await reader.read(-1)
        ok, headers, body = parse_response(data)
        error = "" if ok else (data.split(b"\r\n", 1)[0].decode(errors="replace") or "empty response")
        return Attempt(target.name, t0, ok, round((time.time() - t0) * 1000, 2), error, **_who(headers, body))
    except (OSError, TimeoutError) as exc:
        return Attempt(target.name, t0, False, round((time.time() - t0) * 1000, 2), type(exc).__name__)
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _long_lived(target: Target, seconds: float) -> LongLived:
    t0 = time.time()
    received, expected, who, error = 0, -1, {"amphora": "", "image": "", "peer": ""}, ""
    writer = None
    try:
        async with asyncio.timeout(ATTEMPT_TIMEOUT):
            reader, writer = await asyncio.open_connection(target.address, target.port)
            writer.write(f"GET /stream?seconds={seconds} HTTP/1.0\r\nHost: probe\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
        _, headers, _ = parse_response(head)
        expected = int(headers.get("content-length", "-1"))
        while received < expected:
            chunk = await asyncio.wait_for(reader.read(65536), STALL_TIMEOUT)
            if not chunk:
                error = "closed early"
                break
            if received == 0:
                who = _who(headers, chunk.decode(errors="replace").split("\n", 1)[0])
            received += len(chunk)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        error = type(exc).__name__
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    cut = expected < 0 or received < expected
    return LongLived(target.name, t0, time.time(), cut, received, expected, error if cut else "", **who)


def _collect(pending: set[asyncio.Task[Attempt]], done: list[Attempt]) -> Callable[[asyncio.Task[Attempt]], None]:
    def collect(task: asyncio.Task[Attempt]) -> None:
        pending.discard(task)
        done.append(task.result())

    return collect


async def run_probe(
    targets: Sequence[Target],
    *,
    rate: float,
    long_lived: int,
    stream_seconds: float,
    stop: asyncio.Event,
    ready: Path | None = None,
) -> tuple[list[Attempt], list[LongLived]]:
    streams = [asyncio.create_task(_long_lived(t, stream_seconds)) for t in targets for _ in range(long_lived)]
    await asyncio.sleep(0.2)  # the streams are open before new connections start (and before any flip)
    if ready:
        ready.write_text("ready\n")
    pending: set[asyncio.Task[Attempt]] = set()
    done: list[Attempt] = []
    loop = asyncio.get_running_loop()
    interval, start, n = 1.0 / rate, loop.time(), 0
    while not stop.is_set():
        for target in targets:
            task = asyncio.create_task(_attempt(target))
            pending.add(task)
            task.add_done_callback(_collect(pending, done))
        n += 1
        await asyncio.sleep(max(0.0, start + n * interval - loop.time()))
    if pending:
        await asyncio.wait(pending)
    return sorted(done, key=lambda a: a.t), list(await asyncio.gather(*streams))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lbswap.lab.probe", description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", required=True, help="NAME=ADDRESS:PORT (repeatable)")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE)
    parser.add_argument("--long-lived", type=int, default=10, help="streams per target")
    parser.add_argument("--stream-seconds", type=float, default=8.0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ready", type=Path)
    args = parser.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def go() -> tuple[list[Attempt], list[LongLived]]:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        targets = [Target.parse(t) for t in args.target]
        return await run_probe(
            targets,
            rate=args.rate,
            long_lived=args.long_lived,
            stream_seconds=args.stream_seconds,
            stop=stop,
            ready=args.ready,
        )

    gc.disable()  # a collection pause would show up as a gap that the data plane did not cause
    attempts, streams = asyncio.run(go())
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"attempts": [asdict(a) for a in attempts], "long_lived": [asdict(s) for s in streams]}))
    os.replace(tmp, args.out)
    return 0


@dataclass
class ProbeResult:
    attempts: list[Attempt]
    long_lived: list[LongLived]


class ProbeProcess:
    """The probe as a child process in a network namespace: ``start()``, run the upgrade, ``stop()``."""

    def __init__(
        self,
        netns: str,
        targets: Sequence[Target],
        workdir: Path,
        *,
        rate: float = DEFAULT_RATE,
        long_lived: int = 10,
        stream_seconds: float = 8.0,
    ) -> None:
        self.netns, self.targets, self.workdir = netns, list(targets), workdir
        self.rate, self.long_lived, self.stream_seconds = rate, long_lived, stream_seconds
        self.out = workdir / "probe.json"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        from lbswap.clouds.peer_probe import python_env

        self.workdir.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "probe.ready"
        ready.unlink(missing_ok=True)
        self.out.unlink(missing_ok=True)
        # a higher priority keeps the probe's own lag (2 cores shared with haproxy, members and lbswap) small
        cmd = ["ip", "netns", "exec", self.netns, "nice", "-n", "-10", sys.executable, "-m", "lbswap.lab.probe"]
        cmd += ["--out", str(self.out)]
        cmd += ["--ready", str(ready), "--rate", str(self.rate), "--long-lived", str(self.long_lived)]
        cmd += ["--stream-seconds", str(self.stream_seconds)]
        for target in self.targets:
            cmd += ["--target", target.spec()]
        self._proc = subprocess.Popen(cmd, env=python_env(), stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise LbswapError(f"the probe did not start in namespace {self.netns}")
            time.sleep(0.05)

    def stop(self, timeout: float = 60.0) -> ProbeResult:
        """Stop new connections, wait for in-flight ones and the streams to end, and read what happened."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        try:
            data = json.loads(self.out.read_text())
        except (OSError, ValueError) as exc:
            raise LbswapError(f"the probe ended ({self._proc.returncode}) without its results: {exc}") from exc
        return ProbeResult([Attempt(**a) for a in data["attempts"]], [LongLived(**s) for s in data["long_lived"]])

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


if __name__ == "__main__":
    sys.exit(main())
