"""The plan tells the whole truth, through the CLI on the fake: addresses that change (a dual-stack load
balancer whose IPv6 additional VIP sits on the main VIP port, as Octavia puts it), owners, subnet capacity for
what runs at once, pacing kept by resume, and selection by why to rotate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lbswap import model
from lbswap.clouds import fake
from lbswap.journal import Journal
from lbswap.workflow.guard import StopRequest
from lbswap.workflow.runner import FleetPolicy, SwapOptions, resume, run_campaign


def _check_fleet(state: dict[str, Any]) -> None:
    """Every floating IP on exactly one load balancer, and no clone beside its source."""
    ports = {
        p: i
        for i, lb in state["lbs"].items()
        for p in [lb["vip_port_id"], *(v["port_id"] for v in lb["additional_vips"])]
    }
    assert all(f["port_id"] in ports for f in state["fips"].values() if f["port_id"]), "a floating IP on nothing"
    sources = {
        t.split("=", 1)[1] for lb in state["lbs"].values() for t in lb["tags"] if t.startswith("lbswap:clone-of=")
    }
    assert not sources & set(state["lbs"]), "a clone beside its source"


def _dual_stack_snapshot(path: Path, topology: str = "SINGLE") -> Path:
    lb = {
        "id": "lb-dual",
        "name": "dual",
        "vip_subnet_id": "sub-v4",
        "vip_network_id": "net-1",
        "vip_address": "10.20.0.10",
        "vip_port_id": "port-vip",
        "additional_vips": [{"subnet_id": "sub-v6", "ip_address": "2001:db8::10", "port_id": "port-vip"}],
        "topology": topology,
        "listeners": [{"name": "web", "protocol": "HTTP", "protocol_port": 80, "default_pool_id": "p1"}],
        "pools": [
            {
                "id": "p1",
                "name": "web",
                "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN",
                "members": [{"address": "10.20.1.5", "protocol_port": 80}],
            }
        ],
        "floating_ips": [
            {
                "id": "fip-1",
                "floating_ip_address": "203.0.113.7",
                "port_id": "port-vip",
                "fixed_ip_address": "10.20.0.10",
            }
        ],
    }
    model.from_json(model.LoadBalancer, lb)  # the document is a valid graph
    snap = path / "snap.json"
    snap.write_text(json.dumps({"lbswap_snapshot": 1, "load_balancers": [lb]}))
    return snap


def _cloud(run_cli, tmp_path: Path, *seed: str) -> list[str]:
    cloud = tmp_path / "cloud.json"
    out = run_cli(["fake", "seed", str(cloud), *seed, "-f", "json"])
    assert out.returncode == 0, out.stderr
    assert run_cli(["fake", "publish-image", str(cloud)]).returncode == 0
    return ["--backend", f"fake:{cloud}"]


def _plan(run_cli, backend: list[str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    out = run_cli([*backend, "plan", *args, "-f", "json"])
    return out.returncode, json.loads(out.stdout)


def test_a_dual_stack_swap_names_the_ipv6_address_and_needs_consent(run_cli, tmp_path: Path) -> None:
    backend = _cloud(run_cli, tmp_path, "--from-snapshot", str(_dual_stack_snapshot(tmp_path)))
    graph = fake.FakeCloud(tmp_path / "cloud.json").read_graph("lb-dual")
    assert {v.port_id for v in graph.additional_vips} == {graph.vip_port_id}, "additional VIP on the main port"
    code, (row,) = _plan(run_cli, backend, "--lb", "dual")
    assert code == 2 and row["strategy"] == "fip-swap"
    assert row["addresses"] == [
        {"address": "10.20.0.10", "subnet_id": "sub-v4", "floating_ip": "203.0.113.7", "kept": True},
        {"address": "2001:db8::10", "subnet_id": "sub-v6", "floating_ip": None, "kept": False},
    ]
    refused = run_cli([*backend, "run", "--lb", "dual", "--yes"])
    assert refused.returncode == 2 and "2001:db8::10" in refused.stderr and "--accept-address-change" in refused.stderr
    assert len(fake.FakeCloud(tmp_path / "cloud.json").list_load_balancers()) == 1, "nothing was created"
    done = run_cli([*backend, "run", "--lb", "dual", "--yes", "--accept-address-change", "-f", "json"])
    assert done.returncode == 0, done.stderr
    (swap,) = json.loads(done.stdout)["swaps"]
    assert swap["state"] == "done" and swap["flip_window_seconds"] == 0.0
    clone = fake.FakeCloud(tmp_path / "cloud.json").read_graph(swap["clone_id"])
    assert [f.floating_ip_address for f in clone.floating_ips] == ["203.0.113.7"]


def test_a_dual_stack_active_standby_pair_is_failed_over_keeping_every_address(run_cli, tmp_path: Path) -> None:
    backend = _cloud(run_cli, tmp_path, "--from-snapshot", str(_dual_stack_snapshot(tmp_path, "ACTIVE_STANDBY")))
    code, (row,) = _plan(run_cli, backend, "--lb", "dual")
    assert code == 0 and row["strategy"] == "failover"
    assert all(a["kept"] for a in row["addresses"])


@pytest.mark.parametrize(
    ("owner", "edit"),
    [
        ("Cluster API", lambda lb, state: lb.update(name="k8s-clusterapi-cluster-default-prod-kubeapi")),
        (
            "Heat stack web-stack",
            lambda lb, state: state.setdefault("stacks", []).append(
                {"stack_id": "st-1", "stack_name": "web-stack", "resource_name": "lb", "physical_id": lb["id"]}
            ),
        ),
    ],
)
def test_an_owned_load_balancer_is_blocked_until_allowed(run_cli, tmp_path: Path, owner: str, edit) -> None:
    backend = _cloud(run_cli, tmp_path, "--sample", "2")
    cloud = fake.FakeCloud(tmp_path / "cloud.json")
    lb_id = cloud.list_load_balancers()[0].id

    def change(state: dict[str, Any]) -> None:
        edit(state["lbs"][lb_id], state)

    cloud.mutate(change)
    code, (row,) = _plan(run_cli, backend, "--lb", lb_id)
    owned = [f for f in row["findings"] if f["code"] == "owned"]
    assert code == 2 and owned and owned[0]["blocking"] and owner in owned[0]["message"], row["findings"]
    kind = "cluster-api" if owner == "Cluster API" else "heat"
    code, (row,) = _plan(run_cli, backend, "--lb", lb_id, "--allow-owned", kind)
    assert code == 0, row["findings"]
    assert row["owners"][0]["follow_up"]


@pytest.mark.parametrize(("free", "blocked"), [(2, True), (3, False)])
def test_an_active_standby_clone_needs_three_addresses(run_cli, tmp_path: Path, free: int, blocked: bool) -> None:
    backend = _cloud(run_cli, tmp_path, "--sample", "10")
    cloud = fake.FakeCloud(tmp_path / "cloud.json")
    pair = next(
        lb
        for lb in cloud.list_load_balancers()
        if cloud.read_graph(lb.id).topology == "ACTIVE_STANDBY" and cloud.read_graph(lb.id).floating_ips
    )
    subnet = cloud.read_graph(pair.id).vip_subnet_id
    assert (
        run_cli(["fake", "faults", str(tmp_path / "cloud.json"), "--subnet-free", f"{subnet}={free}"]).returncode == 0
    )
    code, (row,) = _plan(run_cli, backend, "--lb", pair.id, "--strategy", "fip-swap")
    assert (code == 2) is blocked, row["findings"]
    assert any(f["code"] == "subnet-full" for f in row["findings"]) is blocked


def test_ten_swaps_at_parallel_five_with_room_for_three_clones_start_none(run_cli, tmp_path: Path) -> None:
    backend = _cloud(run_cli, tmp_path, "--sample", "10")
    cloud = fake.FakeCloud(tmp_path / "cloud.json")
    subnet = cloud.read_graph(cloud.list_load_balancers()[0].id).vip_subnet_id
    before = cloud.snapshot_state()["lbs"]
    faults = ["fake", "faults", str(tmp_path / "cloud.json"), "--subnet-free", f"{subnet}=6"]
    assert run_cli(faults).returncode == 0
    out = run_cli([*backend, "run", "--all", "--strategy", "fip-swap", "--parallel", "5", "--yes"])
    assert out.returncode == 2 and "lower --parallel" in out.stderr, out.stderr
    assert fake.FakeCloud(tmp_path / "cloud.json").snapshot_state()["lbs"] == before, "never half-started"


def test_resume_keeps_the_stored_parallel_and_rate(tmp_path: Path) -> None:
    from lbswap.plan import PlanOptions, make_plans

    path = tmp_path / "cloud.json"
    fake.seed_sample(path, 10)
    cloud = fake.FakeCloud(path)
    cloud.publish_image("amphora-new")
    journal = Journal(tmp_path / "j.sqlite")
    plans = make_plans(cloud, [lb.id for lb in cloud.list_load_balancers()], PlanOptions(allow_downtime=True))
    stop, starts, running, peak = StopRequest(), [], set(), [0]

    def watch(event: Any) -> None:
        if event.step == "snapshot" and event.status == "start":
            starts.append(cloud.clock.now())
        if event.step == "swap":
            (running.add if event.status == "running" else running.discard)(event.lb_id)
            peak[0] = max(peak[0], len(running))
        if len(starts) == 3:
            stop.set("test stop")

    policy = FleetPolicy(parallel=4, canary=0, rate=30)
    begin = cloud.clock.now()
    with pytest.raises(BaseException, match="test stop"):
        run_campaign(cloud, journal, plans, SwapOptions(drain_timeout=0), policy=policy, on_event=watch, stop=stop)
    first, starts[:] = list(starts), []
    again = cloud.clock.now()
    (result,) = resume(journal, cloud=cloud, on_event=watch)
    assert {s.state for s in result.swaps} == {"done"}
    # 30 per minute: the i-th swap of each run starts no earlier than 2 s x i after the run began (the simulated
    # clock is shared, so a start may be seen later than it was paced, never earlier)
    for t0, times in ((begin, first), (again, starts)):
        assert all(t >= t0 + 2.0 * i - 1e-6 for i, t in enumerate(sorted(times))), (t0, sorted(times))
    assert len(first) >= 3 and len(starts) >= 5
    assert peak[0] == 4, peak
    _check_fleet(cloud.snapshot_state())


@pytest.mark.parametrize(
    ("flags", "expect"),
    [(["--older-than", "10"], "aged"), (["--cert-expiring-within", "5"], "aged"), (["--force"], "all")],
)
def test_selection_by_why_to_rotate(run_cli, tmp_path: Path, flags: list[str], expect: str) -> None:
    backend = _cloud(run_cli, tmp_path, "--sample", "4")
    cloud = fake.FakeCloud(tmp_path / "cloud.json")
    ids = [lb.id for lb in cloud.list_load_balancers()]

    def age(state: dict[str, Any]) -> None:  # the first load balancer's amphorae are 28 days old
        for amp in state["lbs"][ids[0]]["amphorae"]:
            amp["created_at"] = "2026-12-18T00:00:00+00:00"
            amp["cert_expiration"] = "2027-01-17T00:00:00+00:00"

    cloud.mutate(age)
    out = run_cli([*backend, "inventory", *flags, "-f", "json"])
    assert out.returncode == 0, out.stderr
    chosen = [r["id"] for r in json.loads(out.stdout)]
    assert chosen == ([ids[0]] if expect == "aged" else ids)
    assert all(r["rotate_because"] for r in json.loads(out.stdout))


def test_the_plan_says_what_the_verify_and_the_watch_will_do(run_cli, tmp_path: Path) -> None:
    backend = _cloud(run_cli, tmp_path, "--sample", "2")
    cloud = fake.FakeCloud(tmp_path / "cloud.json")
    lb = cloud.read_graph(next(s.id for s in cloud.list_load_balancers() if s.name == "web-001"))
    code, (row,) = _plan(run_cli, backend, "--lb", lb.id, "--verify-udp-payload", "ping", "--watch", "30")
    assert code == 0, row["findings"]
    assert row["verify"]["runs"] is True
    assert lb.floating_ips[0].floating_ip_address in row["verify"]["detail"]
    assert row["verify"]["listeners"] == {
        "HTTP:80 (http)": "GET /, the same status class as the source",
        "TCP:5432 (tcp)": "a TCP connect",
    }
    assert row["watch"]["seconds"] == 30 and row["watch"]["detail"].startswith("30 s after the flip")
    code, (row,) = _plan(run_cli, backend, "--lb", lb.id, "--no-verify", "--watch", "0")
    assert (row["verify"], row["watch"]) == (
        {"runs": False, "detail": "skipped: --no-verify", "listeners": {}},
        {"seconds": 0, "detail": "skipped: --watch 0"},
    )
    table = run_cli([*backend, "plan", "--lb", lb.id], env={"COLUMNS": "250"})
    assert table.returncode == 0, table.stderr
    assert "verify and watch" in table.stdout and "TCP:5432 (tcp): a TCP connect" in table.stdout
    assert "\\n" not in table.stdout  # lines broken, not shown as escapes
    csv = run_cli([*backend, "plan", "--lb", lb.id, "--no-verify", "-f", "csv", "-c", "verify", "-c", "watch"])
    assert csv.stdout.splitlines() == [
        '"verify","watch"',
        '"skipped: --no-verify","60 s after the flip: the '
        "clone's health and request errors, and probes through the moved floating "
        'IPs; flips back by itself past 2 error(s)"',
    ]


def test_no_floating_ip_quota_for_the_temporary_address_stops_the_run_before_anything(run_cli, tmp_path: Path) -> None:
    backend = _cloud(run_cli, tmp_path, "--sample", "2")
    path = tmp_path / "cloud.json"
    cloud = fake.FakeCloud(path)
    lb = cloud.read_graph(cloud.list_load_balancers()[0].id)
    used = cloud.get_quota(lb.project_id).in_use["floatingip"]
    cloud.mutate(lambda state: state["quotas"].setdefault(lb.project_id, {}).update(floatingip=used))
    code, (row,) = _plan(run_cli, backend, "--lb", lb.id)
    (finding,) = [f for f in row["findings"] if f["code"] == "temp-fip-quota"]
    assert code == 2 and finding["blocking"] and "floating IP quota leaves 0" in finding["message"]
    before = cloud.snapshot_state()
    refused = run_cli([*backend, "run", "--lb", lb.id, "--yes"])
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "floating IP quota leaves 0" in refused.stderr
    after = cloud.snapshot_state()
    assert (after["lbs"], after["fips"]) == (before["lbs"], before["fips"]), "the run started something"
    code, (row,) = _plan(run_cli, backend, "--lb", lb.id, "--no-verify")
    assert code == 0 and not [f for f in row["findings"] if f["code"] == "temp-fip-quota"]
    done = run_cli([*backend, "run", "--lb", lb.id, "--yes", "--no-verify", "--watch", "0", "-f", "json"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["swaps"][0]["state"] == "done"  # without the verify, no temporary address
