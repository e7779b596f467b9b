"""Fleet wall time with 1, 2 and 4 conductors against the ideal (swaps / parallel x per-swap time).

Real processes as an operator runs them: a private redis-server (a port of its own, a password in a file of
mode 0600, stopped at the end), an SQLite journal on this host, ``lbswap conductor`` processes (``--workers``
swaps each) and ``lbswap run --all --jobboard ... --wait`` posting the campaign. The fake backend runs on
real time here: its clock follows the wall clock and a sleep sleeps (a ``sitecustomize`` given to the lbswap
processes only, see REAL_TIME), so every change settles ``--latency`` real seconds later and a swap takes a
known time. The per-swap time is measured first: one conductor, one worker, ``--calibrate`` swaps one at a
time. Then, per conductor count, a fresh cloud of ``--swaps`` load balancers: the fleet wall time (first swap
started to last swap ended, from the journal; the command's own wall time beside it), the ideal, and their
ratio (goal: within 1.1).

    .venv/bin/python bench/bench_conductors.py [--conductors 1,2,4] [--swaps 40] [--workers 4] [--port 16381]
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import load_average

from lbswap.clouds.fake import FakeCloud, seed_sample, set_faults

#: the swap's own steps only: no post-flip watch (60 s by default), no drain (three stats samples 10 s apart);
#: no canary (by default the first swap runs alone), so that the ideal is swaps / parallel x per-swap time
RUN = ("--watch", "0", "--drain-timeout", "0", "--canary", "0")
SRC = Path(__file__).resolve().parents[1] / "src"
PYTHON = sys.executable

#: Given to the lbswap processes as sitecustomize.py: the fake's clock is the wall clock (shifted to the
#: simulated time the cloud had when the bench started) and clock.sleep sleeps for real. Every transaction sees
#: the clock at least at that time, so transitions settle in real time; nothing else of the fake changes.
REAL_TIME = """
import os, time
if os.environ.get("LBSWAP_BENCH_REAL_TIME"):
    _sim0, _wall0 = (float(x) for x in os.environ["LBSWAP_BENCH_REAL_TIME"].split(":"))
    from lbswap.clouds.fake import cloud as _cloud, store as _store

    def _now(self=None):
        return _sim0 + time.time() - _wall0

    _init = _store.Session.__init__

    def _session(self, db):
        _init(self, db)
        self._meta["clock"] = max(float(self._meta["clock"]), _now())

    _store.Session.__init__ = _session
    _cloud.FakeCloud._now = _now
    _cloud.FakeCloud._advance = lambda self, seconds: time.sleep(seconds)
"""


class Redis:
    """A private redis-server on 127.0.0.1:``port``; the password only in files of mode 0600."""

    def __init__(self, root: Path, port: int) -> None:
        self.dir = root / "redis"
        self.dir.mkdir(mode=0o700)
        self.port = port
        self.password_file = self.dir / "password"
        self.password_file.touch(mode=0o600)
        self.password_file.write_text(secrets.token_urlsafe(24))
        conf = self.dir / "redis.conf"
        conf.touch(mode=0o600)
        password = self.password_file.read_text()
        conf.write_text(
            f'bind 127.0.0.1\nport {port}\ndir {self.dir}\nsave ""\nappendonly no\nrequirepass {password}\n'
        )
        self.log = (self.dir / "redis.log").open("w")
        self.proc = subprocess.Popen(["redis-server", str(conf)], stdout=self.log, stderr=subprocess.STDOUT)
        env = {**os.environ, "REDISCLI_AUTH": password}
        for _ in range(100):
            ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, env=env)
            if "PONG" in ping.stdout:
                return
            if self.proc.poll() is not None:
                raise SystemExit(f"redis-server did not start: {(self.dir / 'redis.log').read_text()}")
            time.sleep(0.1)
        raise SystemExit("redis-server did not answer")

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


class Fleet:
    """A fresh fake cloud of ``n`` load balancers on real time, a journal, and the lbswap processes on them."""

    def __init__(self, root: Path, n: int, *, latency: float, custom: Path, redis: Redis, db: int) -> None:
        root.mkdir()
        self.root = root
        self.cloud = root / "cloud.sqlite"
        self.journal = root / "journal.sqlite"
        self.redis, self.db = redis, db
        seed_sample(self.cloud, n, seed=5)
        set_faults(self.cloud, latency=latency, drain_seconds=latency)
        fake = FakeCloud(self.cloud)
        fake.change(lambda state: state.__setitem__("stats_lag", latency))
        fake.publish_image("amphora-new", ("amphora",))
        sim0 = fake.clock.now()
        fake.close()
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(custom), str(SRC)]),
            "XDG_STATE_HOME": str(root / "state"),
            "LBSWAP_BENCH_REAL_TIME": f"{sim0}:{time.time()}",
        }
        self.env.pop("LBSWAP_JOBBOARD_PASSWORD", None)
        self.procs: list[subprocess.Popen[bytes]] = []

    def lbswap(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        base = ["--backend", f"fake:{self.cloud}", "--journal", str(self.journal)]
        out = (self.root / f"{log}.out").open("wb")
        err = (self.root / f"{log}.err").open("wb")
        proc = subprocess.Popen([PYTHON, "-m", "lbswap", *base, *args], stdout=out, stderr=err, env=self.env)
        self.procs.append(proc)
        return proc

    def board(self) -> list[str]:
        return ["--jobboard", self.redis.url(self.db), "--jobboard-password-file", str(self.redis.password_file)]

    def conductor(self, index: int, workers: int) -> subprocess.Popen[bytes]:
        timing = ["--claim-expiry", "10", "--heartbeat", "1", "--poll", "0.2"]
        return self.lbswap("conductor", *self.board(), "--workers", str(workers), *timing, log=f"conductor-{index}")

    def started(self, index: int) -> bool:
        return "conductor " in (self.root / f"conductor-{index}.err").read_text(errors="replace")

    def swap_spans(self) -> list[tuple[float, float]]:
        """Each ended swap's (start, end) on the cloud's clock (real seconds here), from the journal."""
        import json

        db = sqlite3.connect(self.journal, timeout=30)
        try:
            rows = db.execute("SELECT result FROM lbswap_swaps").fetchall()
        finally:
            db.close()
        spans = []
        for (text,) in rows:
            steps = [s for s in json.loads(text).get("steps", {}).values() if s.get("started") is not None]
            if steps:
                start = min(float(s["started"]) for s in steps)
                end = max(float(s["started"]) + float(s.get("seconds") or 0.0) for s in steps)
                spans.append((start, end))
        return spans

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def campaign(
    root: Path,
    n: int,
    conductors: int,
    workers: int,
    parallel: int,
    latency: float,
    custom: Path,
    redis: Redis,
    db: int,
) -> dict[str, Any]:
    """One campaign over ``n`` load balancers driven by ``conductors`` processes; its timings."""
    fleet = Fleet(root, n, latency=latency, custom=custom, redis=redis, db=db)
    try:
        for i in range(conductors):
            fleet.conductor(i, workers)
        deadline = time.monotonic() + 120
        while not all(fleet.started(i) for i in range(conductors)):
            if time.monotonic() > deadline:
                raise SystemExit(f"conductors did not start: see {root}")
            time.sleep(0.2)
        start = time.monotonic()
        run = fleet.lbswap(
            "run", "--all", "--yes", "--allow-downtime", "--parallel", str(parallel), *fleet.board(), "--wait", *RUN,
            "-f", "json", log="run",
        )  # fmt: skip
        code = run.wait(1800)
        command_wall = time.monotonic() - start
        if code != 0:
            raise SystemExit(f"lbswap run exited {code}: see {root}/run.err")
        spans = fleet.swap_spans()
    finally:
        fleet.stop()
    durations = [end - begin for begin, end in spans]
    return {
        "swaps": len(spans),
        "wall": max(e for _b, e in spans) - min(b for b, _e in spans),
        "command": command_wall,
        "mean": sum(durations) / len(durations),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conductors", default="1,2,4", help="conductor counts, comma-separated")
    parser.add_argument("--swaps", type=int, default=48)
    parser.add_argument("--workers", type=int, default=4, help="swaps at once per conductor")
    parser.add_argument("--latency", type=float, default=0.3, help="real seconds a change takes to settle")
    parser.add_argument("--calibrate", type=int, default=10, help="swaps run one at a time for the per-swap time")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LBSWAP_TEST_REDIS_PORT", "16381")))
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) and say where")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lbswap-bench-conductors-"))
    custom = root / "custom"
    custom.mkdir()
    (custom / "sitecustomize.py").write_text(REAL_TIME)
    redis = Redis(root, args.port)
    try:
        print(f"{load_average()}; latency {args.latency} s, {args.workers} worker(s) per conductor", flush=True)
        one = campaign(root / "calibrate", args.calibrate, 1, 1, 1, args.latency, custom, redis, 1)
        per_swap = one["mean"]
        print(f"per-swap time {per_swap:.2f} s (mean of {one['swaps']} swaps run one at a time)", flush=True)
        print(f"{'conductors':>10} {'swaps':>5} {'parallel':>8} {'fleet wall':>10} {'ideal':>7} {'ratio':>6} "
              f"{'command wall':>12} {'mean swap':>9}  load (goal: ratio <= 1.10)")  # fmt: skip
        for i, count in enumerate(int(c) for c in args.conductors.split(",")):
            parallel = count * args.workers
            m = campaign(
                root / f"c{count}", args.swaps, count, args.workers, parallel, args.latency, custom, redis, 2 + i
            )
            ideal = args.swaps / parallel * per_swap
            print(
                f"{count:>10} {m['swaps']:>5} {parallel:>8} {m['wall']:>9.1f}s {ideal:>6.1f}s "
                f"{m['wall'] / ideal:>6.2f} {m['command']:>11.1f}s {m['mean']:>8.2f}s  {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            rounds = math.ceil(args.swaps / parallel)
            if rounds * parallel != args.swaps:
                print(f"{'':>10} ({args.swaps} swaps fill {rounds} rounds of {parallel}: at best {rounds} x per-swap)")
        print(load_average())
    finally:
        redis.stop()
        if args.keep:
            print(f"work directory kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
