"""Act as an operator would: real `lbswap` processes on a fake cloud, real signals, two terminals at once.

``Operator`` starts this checkout's ``lbswap`` (PYTHONPATH=src) with a private XDG_STATE_HOME, one fake cloud
and one journal, keeps every process it started and kills what is left when the test ends. Progress of a run
is read from the fake cloud's write counter (machine independent), not from the wall clock.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from lbswap.clouds import fake
from tests import invariants

SRC = Path(__file__).resolve().parents[1] / "src"
RUN_ARGS = ("run", "--all", "--yes", "--parallel", "4", "--allow-downtime", "-f", "json")
SAMPLE = 30


@dataclass(repr=False)
class Finished:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def __repr__(self) -> str:  # what an assertion shows
        return f"`lbswap {' '.join(self.args)}` exited {self.returncode}; stderr: {self.stderr[-3000:]!r}"


class Process:
    """A started ``lbswap``; its output goes to files, so a chatty process never blocks on a full pipe."""

    def __init__(self, args: list[str], popen: subprocess.Popen[bytes], out: IO[bytes], err: IO[bytes]) -> None:
        self.args = args
        self.popen = popen
        self._out, self._err = out, err
        self.finished: Finished | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGSTOP it and return once every thread of it is stopped.

        A signal is delivered asynchronously: a process running on another core goes on until it next enters
        the kernel, long enough to take a lock after a check that found it free.
        """
        self.signal(signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while not _all_threads_stopped(self.pid):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.args} not stopped {timeout} s after SIGSTOP")
            time.sleep(0.001)

    def wait(self, timeout: float = 120) -> Finished:
        if self.finished is None:
            try:
                returncode = self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"lbswap {' '.join(self.args)} still running after {timeout} s") from None
            self.finished = Finished(self.args, returncode, *self._read())
        return self.finished

    def kill(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGCONT)
                self.popen.kill()
        self.popen.wait()
        self._read()

    def _read(self) -> tuple[str, str]:
        texts = []
        for handle in (self._out, self._err):
            if not handle.closed:
                handle.seek(0)
                texts.append(handle.read().decode(errors="replace"))
                handle.close()
            else:
                texts.append("")
        return texts[0], texts[1]


def _default_sigint() -> None:
    # a child of a shell's background job inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: give it the disposition an operator's terminal gives it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Operator:
    """One operator's terminal(s) on one fake cloud and one journal."""

    def __init__(self, root: Path, *, sample: int = SAMPLE, seed: int = 0, name: str = "cloud") -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.cloud_path = root / f"{name}.json"
        self.journal_path = root / "journal.sqlite"
        self.env = {**os.environ, "PYTHONPATH": str(SRC), "XDG_STATE_HOME": str(root / "state")}
        self.ids = fake.seed_sample(self.cloud_path, sample, seed) if sample else []
        self._processes: list[Process] = []
        self._count = 0

    def __enter__(self) -> Operator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for process in self._processes:
            process.kill()

    def base(self, backend: Path | None = None) -> list[str]:
        return ["--backend", f"fake:{backend or self.cloud_path}", "--journal", str(self.journal_path)]

    def start(self, *args: str, backend: Path | None = None) -> Process:
        """``lbswap --backend fake:CLOUD --journal JOURNAL ARGS``, not waited for."""
        full = [*self.base(backend), *args]
        self._count += 1
        out = open(self.root / f"{self._count:03d}.out", "w+b")  # noqa: SIM115 (closed by Process)
        err = open(self.root / f"{self._count:03d}.err", "w+b")  # noqa: SIM115
        popen = subprocess.Popen(
            [sys.executable, "-m", "lbswap", *full],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=self.env,
            preexec_fn=_default_sigint,  # only a signal disposition: safe between fork and exec
        )
        process = Process(full, popen, out, err)
        self._processes.append(process)
        return process

    def run(self, *args: str, backend: Path | None = None, timeout: float = 120) -> Finished:
        return self.start(*args, backend=backend).wait(timeout)

    # --- reading the cloud and the journal -------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return fake.FakeCloud(self.cloud_path).snapshot_state()

    def writes(self) -> int:
        return cloud_writes(self.cloud_path)

    def campaigns(self) -> list[dict[str, Any]]:
        status = self.run("status", "-f", "json")
        assert status.returncode == 0, status
        result: list[dict[str, Any]] = status.json()
        return result

    def campaign_id(self) -> str:
        (campaign,) = self.campaigns()
        return str(campaign["campaign_id"])

    def resume_until_done(self, *extra: str, attempts: int = 4) -> list[Finished]:
        """``lbswap resume`` until it finds nothing left to do; every one must end 0 or 1."""
        done = []
        for _ in range(attempts):
            resumed = self.run("resume", "-f", "json", *extra)
            assert resumed.returncode in (0, 1), resumed
            done.append(resumed)
            if not resumed.json():
                return done
        raise AssertionError(f"`lbswap resume` still found work after {attempts} runs: {done[-1]}")

    def check_finished(self, before: dict[str, Any], *, all_done: bool = False) -> dict[str, Any]:
        """Every swap terminal, the cloud keeps the fleet invariants and each swap's, `status` agrees with it."""
        after = self.state()
        invariants.check_fleet(before, after)
        (campaign,) = self.campaigns()
        invariants.check_status(before, after, campaign["swaps"])
        for swap in campaign["swaps"]:  # I1-I7 along each swap's own calls in the audit
            if swap["state"] != "skipped":
                invariants.check(before, after, swap["id"], swap)
        if all_done:
            states = [s["state"] for s in campaign["swaps"]]
            assert states == ["done"] * len(states), f"not all done: {states}"
        return after

    # --- interrupting at a point -------------------------------------------------------------------------

    def wait_for_writes(self, process: Process, target: int, timeout: float = 60) -> int:
        """Wait until the fake cloud was written ``target`` times (or the process ended); returns the count."""
        deadline = time.monotonic() + timeout
        while True:
            writes = self.writes()
            if writes >= target or not process.running():
                return writes
            if time.monotonic() > deadline:
                raise AssertionError(f"{process.args} made no progress to write {target} in {timeout} s")
            time.sleep(0.01)

    @contextlib.contextmanager
    def paused(self, process: Process, attempts: int = 200) -> Iterator[None]:
        """SIGSTOP ``process`` at a moment it holds neither the cloud's lock nor a journal write transaction
        (a paused driver holds its lease, nothing else), and SIGCONT it afterwards."""
        for _ in range(attempts):
            process.stop()
            if _cloud_lock_free(self.cloud_path) and _journal_write_free(self.journal_path):
                break
            process.signal(signal.SIGCONT)
            time.sleep(0.005)
        else:
            raise AssertionError(f"never found {process.args} outside a lock")
        try:
            yield
        finally:
            process.signal(signal.SIGCONT)


def _all_threads_stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is in the stopped state (``T`` in /proc; a vanished one counts as stopped)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return True
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if state not in ("T", "t", "Z", "X"):
            return False
    return True


def cloud_writes(path: Path) -> int:
    """How often the fake cloud was written (its generation counter; every call writes it)."""
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    finally:
        db.close()
    return int(row[0]) if row else 0


def _cloud_lock_free(path: Path) -> bool:
    """Whether no process is inside a call (every call is one SQLite write transaction on the cloud)."""
    return _journal_write_free(path)


def _journal_write_free(path: Path) -> bool:
    if not path.exists():
        return True
    db = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()


def cloud_view(state: dict[str, Any]) -> dict[str, Any]:
    """What an operator would call the cloud's content: load balancers, floating IPs, and what changed them."""
    return {"lbs": state["lbs"], "fips": state["fips"], "side_effects": len(state["audit"])}


# --- interrupt points ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """A clean ``run`` of the sample fleet on this checkout: where, in cloud writes, the campaign starts and ends."""

    first_write: int
    last_write: int
    seconds: float

    def point(self, fraction: float) -> int:
        return self.first_write + round(fraction * (self.last_write - self.first_write))


_CALIBRATIONS: dict[int, Calibration] = {}


def calibration(root: Path, sample: int = SAMPLE) -> Calibration:
    """Measured once per fleet size and test session: a clean run of :data:`RUN_ARGS` (which must keep every
    invariant, so the checks themselves are seen to pass on a campaign nothing disturbed)."""
    if sample not in _CALIBRATIONS:
        with Operator(root / f"calibration-{sample}", sample=sample) as op:
            before = op.state()
            first = op.writes()
            started = time.monotonic()
            run = op.run(*RUN_ARGS)
            seconds = time.monotonic() - started
            assert run.returncode == 0, run
            op.check_finished(before, all_done=True)
            # from the first create on (planning only reads): the audit's call numbers against the total
            state = op.state()
            first_create = state["audit"][0]["call_n"] / state["calls"]
            last = op.writes()
            _CALIBRATIONS[sample] = Calibration(first + round(first_create * (last - first)), last, seconds)
    return _CALIBRATIONS[sample]


def fractions(seed: int, count: int, low: float = 0.05, high: float = 0.85) -> list[float]:
    """``count`` interrupt points from a fixed seed, as fractions of a clean campaign's cloud writes."""
    rng = random.Random(seed)
    return sorted(round(rng.uniform(low, high), 3) for _ in range(count))


def interrupt_run(
    op: Operator, where: Calibration, fraction: float, signals: Sequence[int] = (signal.SIGTERM,)
) -> Finished:
    """Start the campaign, send ``signals`` (50 ms apart) once the cloud saw ``fraction`` of its writes."""
    run = op.start(*RUN_ARGS)
    op.wait_for_writes(run, where.point(fraction))
    assert run.running(), f"the run ended before its interrupt point {fraction}: {run.wait()}"
    for index, sig in enumerate(signals):
        if index:
            time.sleep(0.05)
        run.signal(sig)
    return run.wait(60)


def holder_refusal(finished: Finished, holder: Process) -> None:
    """A refusal because another process drives the campaign: exit 2, one line naming its host and pid."""
    import socket

    assert finished.returncode == 2, finished
    lines = finished.lines()
    assert len(lines) == 1, f"expected one line, got {lines}"
    assert str(holder.pid) in lines[0], f"the holder's pid {holder.pid} is not named: {lines[0]}"
    assert socket.gethostname() in lines[0], f"the holder's host is not named: {lines[0]}"
