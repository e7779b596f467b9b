"""Bad input: a clear one-line error naming what is wrong and what to do, exit 2, and the cloud unchanged."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lbswap.clouds import fake
from lbswap.journal import Journal

State = dict[str, Any]


def _lb(state: State, index: int) -> State:
    return sorted(state["lbs"].values(), key=lambda lb: lb["name"])[index]


def _set_status(status: str) -> Callable[[State], None]:
    def apply(state: State) -> None:
        _lb(state, 0)["provisioning_status"] = status

    return apply


def _quota(state: State) -> None:
    state["quotas"]["demo-project"] = {"load_balancer": len(state["lbs"])}


def _subnet_full(state: State) -> None:
    state["subnets"]["subnet-tenant"]["capacity"] = len(state["ports"])


def _unreadable_tls(state: State) -> None:
    ref = "https://key-manager.example/v1/containers/0b2f"
    listener = _lb(state, 0)["listeners"][0]
    listener["default_tls_container_ref"] = ref
    state["unreadable_secrets"] = [ref]


def _same_name(state: State) -> None:
    _lb(state, 1)["name"] = _lb(state, 0)["name"]


def _existing_clone(state: State) -> None:
    _lb(state, 1)["tags"] = [f"lbswap:clone-of={_lb(state, 0)['id']}", "lbswap:campaign=c-older"]


def _noop(state: State) -> None:
    return None


# (name, cloud mutation, args after the backend options ({lb0} {lb8} {lb9} are replaced), expected text)
CASES: list[tuple[str, Callable[[State], None], list[str], str]] = [
    ("unknown LB", _noop, ["run", "--lb", "no-such-lb", "--yes"], "no load balancer has the id or name 'no-such-lb'"),
    ("PENDING_UPDATE", _set_status("PENDING_UPDATE"), ["run", "--lb", "{lb0}", "--yes"], "wait until it is ACTIVE"),
    ("ERROR", _set_status("ERROR"), ["run", "--lb", "{lb0}", "--yes"], "is ERROR: repair it with --repair"),
    ("fip-swap without FIP", _noop, ["run", "--lb", "{lb9}", "--strategy", "fip-swap", "--yes"], "needs a floating IP"),
    ("SINGLE failover", _noop, ["run", "--lb", "{lb9}", "--strategy", "failover", "--yes"], "--allow-downtime"),
    ("auto SINGLE no FIP", _noop, ["run", "--lb", "{lb9}", "--yes"], "add --allow-downtime"),
    ("quota", _quota, ["run", "--lb", "{lb0}", "--yes"], "raise the quota"),
    ("subnet full", _subnet_full, ["run", "--lb", "{lb0}", "--yes"], "free addresses or extend the subnet"),
    ("unreadable TLS", _unreadable_tls, ["run", "--lb", "{lb0}", "--yes"], "cannot read TLS reference"),
    ("missing flavor", _noop, ["run", "--lb", "{lb0}", "--target-flavor", "gold", "--yes"], "gold does not exist"),
    ("provider protocol", _noop, ["run", "--lb", "{lb0}", "--target-provider", "ovn", "--yes"], "no HTTP listeners"),
    ("missing provider", _noop, ["run", "--lb", "{lb0}", "--target-provider", "f5", "--yes"], "provider f5 does not"),
    (
        "recreate with FIP",
        _noop,
        ["run", "--lb", "{lb0}", "--strategy", "recreate", "--allow-downtime", "--yes"],
        "recreate would leave them pointing at nothing",
    ),
    (
        "failover with target",
        _noop,
        ["run", "--lb", "{lb8}", "--strategy", "failover", "--target-flavor", "single", "--yes"],
        "failover cannot change flavor",
    ),
    ("ambiguous name", _same_name, ["run", "--lb", "web-000", "--yes"], "matches 2 load balancers"),
    ("clone exists", _existing_clone, ["run", "--lb", "{lb0}", "--yes"], "already has an lbswap clone"),
    ("no selection", _noop, ["run", "--yes"], "select load balancers with --lb"),
    ("no --yes off a terminal", _noop, ["run", "--lb", "{lb0}"], "not a terminal"),
    ("unknown campaign", _noop, ["status", "c-nope"], "no campaign c-nope"),
    ("rollback unknown campaign", _noop, ["rollback", "c-nope"], "no campaign c-nope"),
    ("bad strategy", _noop, ["run", "--lb", "{lb0}", "--strategy", "yolo"], "invalid choice"),
    ("negative drain", _noop, ["run", "--lb", "{lb0}", "--drain-timeout", "-5"], "drain-timeout"),
    ("parallel zero", _noop, ["run", "--lb", "{lb0}", "--parallel", "0"], "parallel"),
]


@pytest.fixture
def cloud(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "cloud.json"
    ids = fake.seed_sample(path, 10)
    names = {f"lb{i}": lb_id for i, lb_id in enumerate(ids)}
    return path, names


def _essence(state: State) -> State:
    return {k: state[k] for k in ("lbs", "fips", "ports", "side_effects")}


@pytest.mark.parametrize(("mutate", "args", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(cloud, tmp_path, run_cli, mutate, args, expected) -> None:
    path, names = cloud
    fake.FakeCloud(path).mutate(mutate)
    fake.set_faults(path)
    before = _essence(fake.FakeCloud(path).snapshot_state())
    journal = tmp_path / "journal.sqlite"
    Journal(journal).close()
    argv = ["--backend", f"fake:{path}", "--journal", str(journal)] + [a.format(**names) for a in args]
    result = run_cli(argv)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lbswap: error: ")
    assert expected in lines[0], lines[0]
    assert _essence(fake.FakeCloud(path).snapshot_state()) == before


def test_corrupted_journal(tmp_path: Path, run_cli) -> None:
    journal = tmp_path / "journal.sqlite"
    journal.write_bytes(b"this is not sqlite at all\x00" * 100)
    result = run_cli(["--journal", str(journal), "status"])
    assert result.returncode == 2
    assert "is corrupted or not an lbswap journal" in result.stderr and len(result.stderr.splitlines()) == 1


def test_journal_from_a_newer_lbswap(tmp_path: Path, run_cli) -> None:
    journal = tmp_path / "journal.sqlite"
    Journal(journal).close()
    with sqlite3.connect(journal) as db:
        db.execute("UPDATE lbswap_meta SET value='99' WHERE key='schema_version'")
    result = run_cli(["--journal", str(journal), "status"])
    assert result.returncode == 2
    assert "written by a newer lbswap" in result.stderr and "upgrade lbswap" in result.stderr


def test_some_other_sqlite_file_is_not_a_journal(tmp_path: Path, run_cli) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    result = run_cli(["--journal", str(other), "status"])
    assert result.returncode == 2 and "not an lbswap journal" in result.stderr


def test_missing_journal_for_resume(tmp_path: Path, run_cli) -> None:
    result = run_cli(["--journal", str(tmp_path / "none.sqlite"), "resume"])
    assert result.returncode == 2 and "no journal at" in result.stderr


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--backend", "nope", "inventory"], "unknown backend 'nope'"),
        (["--backend", "fake:", "inventory"], "needs a state file"),
        (["--backend", "fake:/nonexistent/cloud.json", "inventory"], "no simulated cloud at"),
        (["fake", "seed", "/tmp/x.json", "--from-snapshot", "/nonexistent.json"], "does not exist"),
        (["fake", "faults", "/nonexistent/cloud.json", "--crash-at", "3"], "no simulated cloud at"),
    ],
)
def test_bad_backend_and_files(run_cli, argv, expected) -> None:
    result = run_cli(argv)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_not_a_snapshot_document(tmp_path: Path, run_cli) -> None:
    bogus = tmp_path / "snap.json"
    bogus.write_text(json.dumps({"hello": 1}))
    result = run_cli(["fake", "seed", str(tmp_path / "c.json"), "--from-snapshot", str(bogus)])
    assert result.returncode == 2 and "is not an `lbswap snapshot` document" in result.stderr


def test_rollback_of_a_load_balancer_not_in_the_campaign(cloud, tmp_path: Path, run_cli) -> None:
    path, names = cloud
    backend = ["--backend", f"fake:{path}", "--journal", str(tmp_path / "j.sqlite")]
    run = run_cli([*backend, "run", "--lb", names["lb0"], "--yes", "--keep-source", "10", "-f", "json"])
    assert run.returncode == 0, run.stderr
    campaign = json.loads(run.stdout)["campaign_id"]
    result = run_cli([*backend, "rollback", campaign, "--lb", "nope"])
    assert result.returncode == 2 and "has no load balancer nope" in result.stderr
