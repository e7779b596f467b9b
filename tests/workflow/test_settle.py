"""The post-flip check waits until new connections through each moved floating IP reach the clone (settle.py):
the pure judgement of one probe, then fip-swaps on the fake with a modeled data-plane lag on its simulated
clock: none, 1.2 s (as measured on Neutron's L3 agent), beyond the bound (flipped back), and a backend that
cannot tell who served a probe or cannot reach the floating IP."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from lbswap.clouds import fake
from lbswap.clouds.base import ProbeResult
from lbswap.workflow.runner import SwapOptions, run_campaign
from lbswap.workflow.settle import CLONE, FAILED, OTHER, SOURCE, UNKNOWN, UNREACHABLE, judge
from tests import invariants
from tests.workflow.scenario import OPTIONS, Scenario, scenario, template

IDS = {"source_id": "lb-source", "clone_id": "lb-clone"}


@pytest.mark.parametrize(
    ("probe", "seen"),
    [
        (ProbeResult(ok=True, status=200, served_by="lb-clone"), CLONE),
        (
            ProbeResult(ok=False, error="reset", served_by="lb-clone"),
            CLONE,
        ),  # the data plane is there: the watch judges
        (ProbeResult(ok=True, status=200, served_by="lb-source"), SOURCE),
        (ProbeResult(ok=True, served_by="lb-other"), OTHER),
        (ProbeResult(ok=True, status=200), UNKNOWN),  # answered, without saying who served it
        (ProbeResult(ok=False, error="refused"), FAILED),  # nobody answered: try again
        (ProbeResult(ok=False, error="no route", reachable=False), UNREACHABLE),
        (None, UNREACHABLE),  # not probed (UDP without a payload, SCTP)
    ],
)
def test_judge(probe: ProbeResult | None, seen: str) -> None:
    assert judge(probe, **IDS) == seen


# --- fake swaps ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tmpl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    return template(tmp_path_factory.mktemp("template"))


class Blind(fake.FakeCloud):
    """The fake, with probes that cannot tell who served them (as the openstack backend today) or cannot reach
    the floating IP at all; counts the probes."""

    def __init__(self, path: Path, *, reachable: bool = True) -> None:
        super().__init__(path)
        self.reachable = reachable
        self.flipped = False
        self.probes_after_flip = 0

    def move_floating_ip(self, fip_id: str, **kwargs: Any) -> Any:
        self.flipped = True
        return super().move_floating_ip(fip_id, **kwargs)

    def probe_listener(self, address: str, port: int, protocol: str, **kwargs: Any) -> ProbeResult:
        self.probes_after_flip += self.flipped
        result = super().probe_listener(address, port, protocol, **kwargs)
        if not self.reachable and self.flipped:  # the verify's probes reached it (so it was not skipped)
            return ProbeResult(ok=False, error="no route to host", reachable=False)
        return dataclasses.replace(result, served_by=None)


def _swap(
    sc: Scenario, *, lag: float = 0.0, options: SwapOptions = OPTIONS, cloud: fake.FakeCloud | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    fake.set_faults(sc.cloud_path, fip_lag=lag)
    cloud = cloud or sc.cloud()
    before = cloud.snapshot_state()
    journal = sc.journal()
    try:
        result = run_campaign(cloud, journal, sc.plans(cloud), options)
    finally:
        journal.close()
    after = cloud.snapshot_state()
    swap = result.swaps[0].to_json()
    invariants.check(before, after, sc.lb_id, swap)
    return after, swap


def _moves(after: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in after["audit"] if a["call"] == "move_floating_ip"]


def test_no_lag_the_first_probe_meets_the_clone(tmpl, tmp_path: Path) -> None:
    _after, swap = _swap(scenario(tmpl, tmp_path, "fip-swap"), lag=0.0)
    assert swap["state"] == "done", swap["error"]
    (settle,) = swap["settle"]
    (flip,) = swap["flips"]
    assert settle == {
        "floating_ip_address": flip["floating_ip_address"],
        "api_answered_at": flip["at"],
        "clone_served_at": flip["at"],
        "delay_seconds": 0.0,
        "source_served_until": None,  # no probe met the source: 0.0 is an upper bound
        "outcome": "served by the clone",
        "probes": 1,
    }


def test_a_lag_of_1_2_s_is_waited_for_and_recorded_before_the_drain(tmpl, tmp_path: Path) -> None:
    _after, swap = _swap(scenario(tmpl, tmp_path, "fip-swap"), lag=1.2)
    assert swap["state"] == "done", swap["error"]
    (settle,) = swap["settle"]
    assert settle["outcome"] == "served by the clone"
    # probed every 0.2 s on the simulated clock: the first probe at or after the lag meets the clone
    assert settle["delay_seconds"] == pytest.approx(1.2, abs=OPTIONS.settle_interval)
    assert settle["delay_seconds"] >= 1.2 - 1e-6
    assert settle["probes"] == 7  # 0, 0.2, ..., 1.0 met the source; 1.2 the clone
    assert settle["api_answered_at"] == swap["flips"][0]["at"]
    # the last probe on the source: 1.0 s after the API answered (the data plane followed between 1.0 and 1.2 s)
    assert settle["source_served_until"] - settle["api_answered_at"] == pytest.approx(1.0)
    assert swap["steps"]["drain"]["started"] >= settle["clone_served_at"]  # the drain starts only then
    assert swap["steps"]["post-flip-check"]["ended"] >= settle["clone_served_at"]


def test_a_lag_beyond_the_bound_flips_back_and_says_so(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    options = dataclasses.replace(OPTIONS, settle_timeout=3.0)
    after, swap = _swap(sc, lag=5.0, options=options)
    assert swap["state"] == "rolled_back", swap
    assert "step post-flip-check" in swap["error"]
    assert "still sends new connections to the source 3 s after the API moved it" in swap["error"]
    (settle,) = swap["settle"]
    assert settle["outcome"] == "timed out"
    assert settle["clone_served_at"] is None and settle["delay_seconds"] is None
    assert settle["probes"] == 16  # 0, 0.2, ..., 3.0
    assert "16 of 16 probe(s) still reached the source" in settle["reason"]
    assert [m["port_id"] for m in _moves(after)][1:] == [sc.cloud().read_graph(sc.lb_id).vip_port_id]  # back
    assert "drain" not in swap["steps"]  # the source was never drained, nor retired (invariants.check)


def test_a_backend_that_cannot_tell_who_served_ends_the_wait_at_once(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    blind = Blind(sc.cloud_path)
    options = dataclasses.replace(OPTIONS, watch=0.0)  # only the settle probes after the flip
    _after, swap = _swap(sc, lag=1.2, options=options, cloud=blind)
    assert swap["state"] == "done", swap["error"]
    (settle,) = swap["settle"]
    assert settle["outcome"] == "unknown"
    assert settle["reason"] == "the fake backend cannot tell who served a probe"
    assert settle["clone_served_at"] is None and settle["delay_seconds"] is None
    assert settle["probes"] == blind.probes_after_flip == 1


def test_a_floating_ip_this_host_cannot_reach_is_not_waited_for(tmpl, tmp_path: Path) -> None:
    sc = scenario(tmpl, tmp_path, "fip-swap")
    blind = Blind(sc.cloud_path, reachable=False)
    _after, swap = _swap(sc, lag=1.2, options=dataclasses.replace(OPTIONS, watch=0.0), cloud=blind)
    assert swap["state"] == "done", swap["error"]
    (settle,) = swap["settle"]
    assert settle["outcome"] == "not reachable"
    assert settle["reason"] == "no route to host"
    assert settle["probes"] == blind.probes_after_flip == 1


def test_without_the_verify_nothing_is_probed(tmpl, tmp_path: Path) -> None:
    """--no-verify is what an operator whose host cannot reach the floating IPs gives: no settle probe either."""
    sc = scenario(tmpl, tmp_path, "fip-swap")
    blind = Blind(sc.cloud_path)
    _after, swap = _swap(sc, lag=1.2, options=dataclasses.replace(OPTIONS, watch=0.0, verify=False), cloud=blind)
    assert swap["state"] == "done", swap["error"]
    (settle,) = swap["settle"]
    assert settle["outcome"] == "unknown"
    assert settle["reason"].startswith("not probed: the verify did not run")
    assert settle["probes"] == blind.probes_after_flip == 0


def test_settle_timeout_0_does_not_wait(tmpl, tmp_path: Path) -> None:
    options = dataclasses.replace(OPTIONS, settle_timeout=0.0)
    _after, swap = _swap(scenario(tmpl, tmp_path, "fip-swap"), lag=30.0, options=options)
    assert swap["state"] == "done", swap["error"]
    (settle,) = swap["settle"]
    assert settle["outcome"] == "skipped: --settle-timeout 0"
    assert settle["probes"] == 0


def test_the_modeled_probe_follows_a_move_after_the_lag(tmpl, tmp_path: Path) -> None:
    """The fake's data plane: the API answers at once, new connections follow ``fip_lag`` seconds later."""
    sc = scenario(tmpl, tmp_path, "fip-swap")
    fake.set_faults(sc.cloud_path, fip_lag=1.2)
    cloud = sc.cloud()
    source = cloud.read_graph(sc.lb_id)
    (fip,) = source.floating_ips
    other = next(lb for lb in cloud.list_load_balancers() if lb.id != sc.lb_id and lb.vip_port_id)

    def served_by() -> str | None:
        return cloud.probe_listener(fip.floating_ip_address, 80, "HTTP").served_by

    assert served_by() == sc.lb_id
    moved = cloud.move_floating_ip(
        fip.id, port_id=other.vip_port_id, fixed_ip_address=None, if_revision=fip.revision_number
    )
    assert moved.port_id == other.vip_port_id  # the API answered
    cloud.clock.sleep(1.1)
    assert served_by() == sc.lb_id  # the data plane has not followed yet
    cloud.clock.sleep(0.2)
    assert served_by() == other.id


def test_the_operator_sets_the_lag_and_the_bound_on_the_command_line(tmpl, tmp_path: Path, run_cli) -> None:
    """`lbswap fake faults --fip-lag` and `lbswap run --settle-timeout`, as an operator types them."""
    sc = scenario(tmpl, tmp_path, "fip-swap")
    assert run_cli(["fake", "faults", str(sc.cloud_path), "--fip-lag", "-1"]).returncode == 2
    assert run_cli(["fake", "faults", str(sc.cloud_path), "--fip-lag", "2.5"]).returncode == 0
    backend = ["--backend", f"fake:{sc.cloud_path}", "--journal", str(sc.journal_path)]
    run = run_cli([*backend, "run", "--lb", sc.lb_id, "--yes", "--settle-timeout", "2", "-f", "json"])
    assert run.returncode == 1, run.stderr[-2000:]
    swap = json.loads(run.stdout)["swaps"][0]
    assert swap["state"] == "rolled_back"
    assert swap["settle"][0]["outcome"] == "timed out"
    assert "2 s after the API moved it" in swap["error"]
    sc = scenario(tmpl, tmp_path / "again", "fip-swap")
    assert run_cli(["fake", "faults", str(sc.cloud_path), "--fip-lag", "2.5"]).returncode == 0
    backend = ["--backend", f"fake:{sc.cloud_path}", "--journal", str(sc.journal_path)]
    run = run_cli([*backend, "run", "--lb", sc.lb_id, "--yes", "-f", "json"])  # the default bound: 10 s
    assert run.returncode == 0, run.stderr[-2000:]
    (settle,) = json.loads(run.stdout)["swaps"][0]["settle"]
    assert settle["outcome"] == "served by the clone"
    assert settle["delay_seconds"] == pytest.approx(2.6, abs=0.11)  # the first probe at or after 2.5 s


def test_a_rollback_waits_for_the_source_to_serve_again_before_deleting_the_clone(tmpl, tmp_path: Path) -> None:
    """The data plane follows a move back late too: for ``fip_lag`` seconds after the API answered, new
    connections still reach the clone, so deleting it at once would reset them."""
    sc = scenario(tmpl, tmp_path, "fip-swap")
    # the clone serves (after the lag), then fails 40 s after boot: the watch trips and flips back
    fake.FakeCloud(sc.cloud_path).publish_image("amphora-late", fault="http-503", fault_after=40.0)
    after, swap = _swap(sc, lag=1.2)
    assert swap["state"] == "rolled_back", swap
    assert swap["watch"]["outcome"] == "tripped"
    back = [f for f in swap["flips"] if f.get("back")]
    (moved_back,) = back
    (settle,) = swap["settle_back"]
    assert settle["outcome"] == "served by the clone"  # the role swapped: served by the source again
    assert settle["api_answered_at"] == moved_back["at"]
    assert settle["delay_seconds"] >= 1.2 - 1e-6
    assert settle["source_served_until"] is not None  # probes met the clone first (the lag)
    deletes = [a for a in after["audit"] if a["call"] == "delete_load_balancer"]
    assert deletes and all(a["at"] >= settle["clone_served_at"] for a in deletes), deletes
