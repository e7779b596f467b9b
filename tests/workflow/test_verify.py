"""Verify before the flip and watch after it: the pure decisions as tables, then fake swaps whose clone image
carries a fault (caught by the verify before any client saw it, or by the watch and flipped back)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from lbswap.clouds import fake
from lbswap.clouds.base import ProbeResult
from lbswap.model import MARKER_TEMP_FIP, Listener
from lbswap.workflow.runner import SwapOptions, run_campaign
from lbswap.workflow.verify import LB_KEY, WatchSample, verify_verdict, watch_verdict
from tests import invariants
from tests.workflow.scenario import OPTIONS, Scenario, scenario, template

HTTP = Listener(protocol="HTTP", protocol_port=80)
TCP = Listener(protocol="TCP", protocol_port=5432)
TLS = Listener(protocol="TERMINATED_HTTPS", protocol_port=443)
UDP = Listener(protocol="UDP", protocol_port=53)
OK = ProbeResult(ok=True)


def status(code: int, cert: str | None = None) -> ProbeResult:
    return ProbeResult(ok=True, status=code, cert_fingerprint=cert)


def failed(error: str) -> ProbeResult:
    return ProbeResult(ok=False, error=error)


@pytest.mark.parametrize(
    ("listener", "clone", "source", "ok", "reason"),
    [
        (HTTP, status(200), status(200), True, "same (status 200)"),
        (HTTP, status(204), status(200), True, "same (status 204)"),  # the status class counts
        (HTTP, status(503), status(200), False, "the clone answered 503, the source 200"),
        (HTTP, status(404), status(200), False, "the clone answered 404, the source 200"),
        (HTTP, status(401), status(403), True, "same (status 401)"),  # both refuse this host alike
        (HTTP, failed("refused"), status(200), False, "the clone: refused; the source: status 200"),
        (HTTP, failed("timeout"), status(200), False, "the clone: timeout; the source: status 200"),
        (HTTP, failed("reset"), failed("reset"), True, "fails on both (clone: reset; source: reset): no worse"),
        (HTTP, status(200), failed("timeout"), True, "the clone: status 200; the source: timeout"),
        (TCP, OK, OK, True, "same (connected)"),
        (TCP, failed("refused"), OK, False, "the clone: refused; the source: connected"),
        (TCP, failed("closed"), OK, False, "the clone: closed; the source: connected"),
        (TLS, status(200, "aa"), status(200, "aa"), True, "same (status 200)"),
        (TLS, status(200, "aa" * 8), status(200, "bb" * 8), False, "certificate sha256:aaaaaaaaaaaaaaaa, the source"),
        (TLS, status(500, "aa"), status(200, "aa"), False, "the clone answered 500, the source 200"),
        (UDP, None, None, True, "not verified: UDP without --verify-udp-payload"),
        (UDP, OK, OK, True, "same (connected)"),
        (UDP, failed("timeout"), OK, False, "the clone: timeout; the source: connected"),
        (Listener(protocol="SCTP", protocol_port=9), None, None, True, "not verified: no probe for SCTP"),
        (HTTP, ProbeResult(ok=False, error="no route", reachable=False), status(200), True, "not verified: no route"),
        (HTTP, status(200), None, True, "the clone: status 200 (no source floating IP to compare with)"),
        (HTTP, status(502), None, False, "the clone answered 502 (no source floating IP to compare with)"),
        (HTTP, failed("refused"), None, False, "the clone: refused (no source floating IP to compare with)"),
    ],
)
def test_verify_verdict(
    listener: Listener, clone: ProbeResult | None, source: ProbeResult | None, ok: bool, reason: str
) -> None:
    got_ok, got_reason = verify_verdict(listener, clone, source)
    assert got_ok is ok
    assert reason in got_reason


HEALTHY = {LB_KEY: "ONLINE", "member 10.0.1.10:8080 of pool web": "ONLINE"}


def sample(
    at: float = 0.0,
    prov: str = "ACTIVE",
    health: dict[str, str] | None = None,
    errors: int = 0,
    failures: tuple[str, ...] = (),
) -> WatchSample:
    return WatchSample(at, prov, HEALTHY if health is None else health, errors, 0, failures)


@pytest.mark.parametrize(
    ("samples", "max_errors", "reason"),
    [
        ([], 0, None),
        ([sample()], 0, None),
        ([sample(), sample(at=10)], 0, None),
        ([sample(errors=7), sample(at=10, errors=9)], 2, None),  # errors from before the watch do not count
        ([sample(errors=7), sample(at=10, errors=10)], 2, "3 request error(s) and 0 failed probe(s)"),
        ([sample(failures=("HTTP:80 via 203.0.113.5: refused",))], 0, "last: HTTP:80 via 203.0.113.5: refused"),
        ([sample(failures=("a: reset",)), sample(failures=("a: reset",))], 2, None),
        ([sample(failures=("a: reset",))] * 3, 2, "0 request error(s) and 3 failed probe(s)"),
        ([sample(errors=0), sample(errors=1, failures=("a: timeout",))], 1, "1 request error(s) and 1 failed"),
        ([sample(), sample(prov="ERROR")], 10, "the clone went ERROR"),
        ([sample(prov="PENDING_UPDATE")], 10, None),
        ([sample(prov="DELETED", health={})], 10, "the clone went DELETED"),
        (
            [sample(health={**HEALTHY, "member 10.0.1.10:8080 of pool web": "ERROR"})],
            10,
            "member 10.0.1.10:8080 of pool web is ERROR on the clone, ONLINE on the source",
        ),
        ([sample(health={**HEALTHY, LB_KEY: "DEGRADED"})], 10, "load balancer is DEGRADED on the clone, ONLINE"),
        ([sample(health={LB_KEY: "ONLINE"})], 10, "is ERROR on the clone"),  # a member gone from the clone
    ],
)
def test_watch_verdict(samples: list[WatchSample], max_errors: int, reason: str | None) -> None:
    got = watch_verdict(samples, HEALTHY, max_errors)
    if reason is None:
        assert got is None
    else:
        assert got is not None and reason in got, got


def test_watch_verdict_source_no_healthier_than_clone() -> None:
    # NO_MONITOR on the source asks nothing of the clone's member beyond "not ERROR"
    source = {LB_KEY: "ONLINE", "member m": "NO_MONITOR"}
    assert watch_verdict([sample(health={LB_KEY: "ONLINE", "member m": "OFFLINE"})], source, 0) is None
    assert watch_verdict([sample(health={LB_KEY: "ONLINE", "member m": "ERROR"})], source, 0) is not None


# --- fake swaps ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tmpl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    return template(tmp_path_factory.mktemp("template"))


def _run(sc: Scenario, options: SwapOptions = OPTIONS) -> tuple[dict, dict, dict]:
    cloud = sc.cloud()
    before = cloud.snapshot_state()
    journal = sc.journal()
    try:
        result = run_campaign(cloud, journal, sc.plans(cloud), options)
    finally:
        journal.close()
    after = cloud.snapshot_state()
    swap = result.swaps[0].to_json()
    invariants.check(before, after, sc.lb_id, swap)
    return before, after, swap


def _moves(before: dict, after: dict) -> list[dict]:
    return [a for a in after["audit"][len(before["audit"]) :] if a["call"] == "move_floating_ip"]


@pytest.mark.parametrize("fault", ["refuse", "http-503", "reset", "stall"])
def test_a_bad_image_is_caught_by_the_verify_before_the_flip(tmpl, tmp_path: Path, fault: str) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    fake.FakeCloud(sc.cloud_path).publish_image("amphora-bad", fault=fault)
    before, after, swap = _run(sc)
    assert swap["state"] == "rolled_back", swap
    assert "verify: listener HTTP:80" in swap["error"]
    assert swap["verify"]["outcome"] == "failed"
    assert _moves(before, after) == []  # no client ever reached the clone
    made = [a for a in after["audit"] if a["call"] == "create_floating_ip"]
    assert len(made) == 1 and MARKER_TEMP_FIP in made[0]["tags"]  # it was probed through a temporary address
    # invariants.check: the source untouched, the clone gone, no temporary floating IP left


def test_a_good_image_passes_the_verify_and_the_watch(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    _before, after, swap = _run(sc)
    assert swap["state"] == "done", swap
    assert swap["verify"]["outcome"] == "passed"
    assert swap["verify"]["listeners"] == {"HTTP:80 (http)": "same (status 200)"}
    assert swap["verify"]["answering"] == ["HTTP:80 (http)"]  # what the watch then probes
    assert swap["watch"]["outcome"] == "passed"
    assert swap["watch"]["seconds"] == pytest.approx(60.0)
    assert swap["watch"]["failed_probes"] == 0
    order = [a["call"] for a in after["audit"]]
    assert order.index("delete_floating_ip") < order.index("move_floating_ip")  # released before the flip
    assert swap["steps"]["watch"]["ended"] <= swap["steps"]["drain"]["started"]  # the drain waits for the watch


def test_a_fault_after_the_flip_is_caught_by_the_watch_and_flipped_back(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    fake.FakeCloud(sc.cloud_path).publish_image("amphora-late", fault="http-503", fault_after=3600.0)
    before, after, swap = _run(sc)
    assert swap["verify"]["outcome"] == "passed"
    assert swap["state"] == "done"  # the fault comes after the watch: not seen
    sc = scenario(tmpl, tmp_path / "late", "fip-swap")
    cloud = fake.FakeCloud(sc.cloud_path)
    # the clone boots after a few simulated seconds and is verified at once; the fault shows 40 s after boot
    cloud.publish_image("amphora-late", fault="http-503", fault_after=40.0)
    before, after, swap = _run(sc)
    assert swap["state"] == "rolled_back", swap
    assert swap["verify"]["outcome"] == "passed"
    assert swap["watch"]["outcome"] == "tripped"
    assert "failed probe(s)" in swap["watch"]["reason"] and "status 503" in swap["watch"]["reason"]
    assert swap["watch"]["failed_probes"] == OPTIONS.watch_max_errors + 1
    assert "watch: tripped" in swap["error"]
    moves = _moves(before, after)
    assert len(moves) == 2  # flipped, then flipped back by itself
    assert [f.get("back", False) for f in swap["flips"]] == [False, True]


def test_no_verify_and_no_watch_are_recorded(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    fake.FakeCloud(sc.cloud_path).publish_image("amphora-bad", fault="refuse")
    options = dataclasses.replace(OPTIONS, verify=False, watch=0)
    _before, after, swap = _run(sc, options)
    assert swap["state"] == "done"  # nothing looked: the bad image went live (what --no-verify risks)
    assert swap["verify"] == {"outcome": "skipped: --no-verify"}
    assert swap["watch"] == {"outcome": "skipped: --watch 0"}
    assert not [a for a in after["audit"] if a["call"] == "create_floating_ip"]


def test_crash_during_verify_then_resume_leaves_no_temporary_floating_ip(tmpl, tmp_path: Path, run_cli) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    fake.set_faults(sc.cloud_path)  # count side effects from the CLI's first call, as the run below does
    backend = ["--backend", f"fake:{sc.cloud_path}", "--journal", str(sc.journal_path)]
    clean = run_cli([*backend, "run", "--lb", sc.lb_id, "--yes", "-f", "json"])
    assert clean.returncode == 0, clean.stderr[-2000:]
    audit = fake.FakeCloud(sc.cloud_path).snapshot_state()["audit"]
    created = next(a["n"] for a in audit if a["call"] == "create_floating_ip")
    for crash_at in (created, created + 1):  # right after the temporary floating IP's create, and its release
        sc = scenario(tmpl, tmp_path / f"crash{crash_at}", "fip-swap")
        before = fake.FakeCloud(sc.cloud_path).snapshot_state()
        fake.set_faults(sc.cloud_path, crash_at=crash_at)
        backend = ["--backend", f"fake:{sc.cloud_path}", "--journal", str(sc.journal_path)]
        run = run_cli([*backend, "run", "--lb", sc.lb_id, "--yes"])
        assert run.returncode == 137, run.stderr[-2000:]
        state = fake.FakeCloud(sc.cloud_path).snapshot_state()
        left = [f for f in state["fips"].values() if MARKER_TEMP_FIP in f["tags"]]
        assert len(left) == (1 if crash_at == created else 0)  # the crash really left one behind
        fake.clear_faults(sc.cloud_path)
        resumed = run_cli([*backend, "resume", "-f", "json"])
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        (campaign,) = json.loads(resumed.stdout)
        swap = campaign["swaps"][0]
        assert swap["state"] == "done", swap
        after = fake.FakeCloud(sc.cloud_path).snapshot_state()
        invariants.check(before, after, sc.lb_id, swap)  # I4: no temporary floating IP left


def test_rollback_and_recover_release_a_temporary_floating_ip(tmpl, tmp_path: Path, run_cli) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    fake.set_faults(sc.cloud_path)
    backend = ["--backend", f"fake:{sc.cloud_path}", "--journal", str(sc.journal_path)]
    assert run_cli([*backend, "run", "--lb", sc.lb_id, "--yes"]).returncode == 0
    created = next(
        a["n"] for a in fake.FakeCloud(sc.cloud_path).snapshot_state()["audit"] if a["call"] == "create_floating_ip"
    )
    for how in ("rollback", "recover"):
        sc = scenario(tmpl, tmp_path / how, "fip-swap")
        before = fake.FakeCloud(sc.cloud_path).snapshot_state()
        fake.set_faults(sc.cloud_path, crash_at=created)
        backend = ["--backend", f"fake:{sc.cloud_path}", "--journal", str(sc.journal_path)]
        assert run_cli([*backend, "run", "--lb", sc.lb_id, "--yes"]).returncode == 137
        fake.clear_faults(sc.cloud_path)
        if how == "rollback":
            campaign = json.loads(run_cli([*backend, "status", "-f", "json"]).stdout)[0]["campaign_id"]
            done = run_cli([*backend, "rollback", campaign, "-f", "json"])
            assert done.returncode == 0, done.stderr[-2000:]
            swap = json.loads(done.stdout)["swaps"][0]
        else:
            done = run_cli(["--backend", f"fake:{sc.cloud_path}", "recover", "--yes", "-f", "json"])
            assert done.returncode == 0, done.stderr[-2000:]
            swap = {"state": "rolled_back", "strategy": "fip-swap", "error": None}
        after = fake.FakeCloud(sc.cloud_path).snapshot_state()
        assert swap["state"] == "rolled_back", swap
        invariants.check(before, after, sc.lb_id, swap)
