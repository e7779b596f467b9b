"""The cliff commands: -c and -f value|csv, --help that speaks to operators, and the openstack plugin's entry
points (loaded without python-openstackclient)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from lbswap.cli import app, columns
from lbswap.clouds import fake
from tests.conftest import SRC, RunCli

ROOT = SRC.parent


@pytest.fixture
def seeded(tmp_path: Path, run_cli: RunCli) -> tuple[list[str], list[str]]:
    """A simulated cloud of 3 load balancers and a campaign that swapped 2 of them."""
    path = tmp_path / "cloud.json"
    ids = fake.seed_sample(path, 3)
    backend = ["--backend", f"fake:{path}", "--journal", str(tmp_path / "journal.sqlite")]
    run = run_cli([*backend, "run", "--lb", ids[0], "--lb", ids[1], "--yes", "--drain-timeout", "0", "-f", "json"])
    assert run.returncode == 0, run.stderr
    return backend, ids


# --- -c and -f value|csv -----------------------------------------------------------------------------------


def test_inventory_columns_and_value(run_cli: RunCli, seeded: tuple[list[str], list[str]]) -> None:
    backend, _ = seeded
    every = json.loads(run_cli([*backend, "inventory", "-f", "json"]).stdout)
    result = run_cli([*backend, "inventory", "-c", "id", "-c", "name", "-f", "value"])
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == sorted(f"{lb['id']} {lb['name']}" for lb in every)
    # the global options after the command, as the README writes them
    after = run_cli(["inventory", "-c", "name", "-f", "value", *backend])
    assert sorted(after.stdout.splitlines()) == sorted(lb["name"] for lb in every)


def test_inventory_csv_has_every_flat_column(run_cli: RunCli, seeded: tuple[list[str], list[str]]) -> None:
    backend, _ = seeded
    result = run_cli([*backend, "inventory", "-f", "csv"])
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert tuple(rows[0]) == columns.INVENTORY
    every = json.loads(run_cli([*backend, "inventory", "-f", "json"]).stdout)
    by_id = {row[0]: dict(zip(columns.INVENTORY, row, strict=True)) for row in rows[1:]}
    for lb in every:
        flat = by_id[lb["id"]]
        assert flat["floating_ips"] == " ".join(f["floating_ip_address"] for f in lb["floating_ips"])
        assert flat["provisioning_status"] == lb["provisioning_status"]


def test_json_with_columns_is_flat(run_cli: RunCli, seeded: tuple[list[str], list[str]]) -> None:
    backend, _ = seeded
    rows = json.loads(run_cli([*backend, "inventory", "-c", "id", "-c", "stale_image", "-f", "json"]).stdout)
    assert rows and all(set(r) == {"id", "stale_image"} for r in rows)


def test_status_columns_value_and_csv(run_cli: RunCli, seeded: tuple[list[str], list[str]]) -> None:
    backend, ids = seeded
    (campaign,) = json.loads(run_cli([*backend, "status", "-f", "json"]).stdout)
    value = run_cli([*backend, "status", campaign["campaign_id"], "-c", "id", "-c", "state", "-f", "value"])
    assert value.returncode == 0, value.stderr
    assert sorted(value.stdout.splitlines()) == sorted([f"{ids[0]} done", f"{ids[1]} done"])
    table = run_cli([*backend, "status", "-f", "csv"])
    rows = list(csv.reader(io.StringIO(table.stdout)))
    assert tuple(rows[0]) == columns.SWAPS
    assert {(r[0], r[1], r[4]) for r in rows[1:]} == {(campaign["campaign_id"], i, "done") for i in ids[:2]}
    clones = {s["id"]: s["clone_id"] for s in campaign["swaps"]}
    assert {r[1]: r[5] for r in rows[1:]} == clones


def test_an_unknown_column_is_bad_input(run_cli: RunCli, seeded: tuple[list[str], list[str]]) -> None:
    backend, _ = seeded
    result = run_cli([*backend, "inventory", "-c", "nope", "-f", "json"])
    assert result.returncode == 2
    assert "no column 'nope'" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert json.loads(result.stdout)["exit_code"] == 2


def test_value_format_shows_tenant_text_safely(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "cloud.json"
    fake.seed_sample(path, 1)

    def rename(state: dict[str, Any]) -> None:
        next(iter(state["lbs"].values()))["name"] = "evil\x1b[31m\nname"

    fake.FakeCloud(path).mutate(rename)
    result = run_cli(["--backend", f"fake:{path}", "inventory", "-c", "name", "-f", "value"])
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and result.stdout.count("\n") == 1
    exact = run_cli(["--backend", f"fake:{path}", "inventory", "-c", "name", "-f", "json"])
    assert json.loads(exact.stdout) == [{"name": "evil\x1b[31m\nname"}]  # the encoder escapes, not lbswap


# --- --help -------------------------------------------------------------------------------------------------

CHANGES = {
    "inventory": "changes nothing",
    "snapshot": "changes nothing",
    "plan": "changes nothing",
    "run": "changes the cloud",
    "status": "changes nothing",
    "resume": "changes the cloud",
    "rollback": "changes the cloud",
    "finalize": "changes the cloud",
    "report": "changes no cloud",
    "recover": "changes the cloud",
    "conductor": "changes the cloud",
    "fake seed": "changes no cloud",
    "fake faults": "changes only path",
    "fake publish-image": "changes only path",
    "local": "changes this host",
    "demo": "changes this host",
}


def _help(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lbswap", *argv], capture_output=True, text=True, env={"PYTHONPATH": str(SRC)}
    )


def test_every_command_has_a_help_entry() -> None:
    assert sorted(CHANGES) == sorted(c.name for c in app.COMMANDS)  # type: ignore[attr-defined]


def test_lbswap_help_is_for_operators() -> None:
    result = _help(["--help"])
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "Upgrade Octavia load balancers blue/green" in text
    assert "`plan` changes nothing" in text and "change the cloud" in text
    assert "exit codes: 0 done; 1" in text
    for name in CHANGES:
        assert f"\n  {name} " in result.stdout
    assert "The only module that prints" not in text


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_command_help_says_what_it_changes(name: str) -> None:
    result = _help([*name.split(), "--help"])
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split()).lower()
    assert text.startswith(f"usage: lbswap {name}")
    assert CHANGES[name] in text, text
    assert "exit codes: 0 done" in text


def test_help_after_global_options_is_the_commands() -> None:
    result = _help(["--backend", "fake:/x.json", "run", "-h"])
    assert result.returncode == 0 and result.stdout.startswith("usage: lbswap run")


# --- the openstack plugin -----------------------------------------------------------------------------------


def _declared() -> dict[str, dict[str, str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]  # type: ignore[no-any-return]


def test_plugin_entry_points_load_without_python_openstackclient(tmp_path: Path) -> None:
    """The entry points pyproject.toml declares, found through importlib.metadata as the openstack client
    finds them (a dist-info written from pyproject.toml), load in a process without openstackclient."""
    declared = _declared()
    dist = tmp_path / "lbswap_plugin_check-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lbswap-plugin-check\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(
        "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) for group, eps in declared.items())
    )
    script = """
import importlib.metadata as md, json, sys
sys.modules["openstackclient"] = None  # importing it would fail: the plugin must not need it
ours = lambda group: [e for e in md.entry_points(group=group) if e.dist.name == "lbswap-plugin-check"]
(ext,) = ours("openstack.cli.extension")
plugin = ext.load()
group = f"openstack.{plugin.API_NAME}.v{plugin.DEFAULT_API_VERSION}"
commands = {e.name: e.load() for e in ours(group)}
print(json.dumps({"name": ext.name, "api": plugin.API_NAME, "versions": sorted(plugin.API_VERSIONS),
                  "commands": {n: c.__module__ + ":" + c.__qualname__ for n, c in commands.items()},
                  "bases": sorted({b.__module__ for c in commands.values() for b in c.__mro__})}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{tmp_path}:{SRC}"},
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["name"] == found["api"] == "load_balancer_upgrade"
    assert found["versions"] == ["1"]
    wanted = {"inventory", "plan", "run", "status", "resume", "rollback", "finalize", "report"}
    assert wanted <= {n.removeprefix("loadbalancer_upgrade_") for n in found["commands"]}
    assert found["commands"]["loadbalancer_upgrade_run"] == "lbswap.cli.campaign:Run"
    assert found["commands"]["loadbalancer_upgrade"] == "lbswap.cli.osc_plugin:Overview"
    assert "cliff.command" in found["bases"]


def test_the_plugin_overview_lists_every_command_and_what_it_changes() -> None:
    from lbswap.cli import osc_plugin

    declared = _declared()["openstack.load_balancer_upgrade.v1"]
    listed = {f"loadbalancer_upgrade_{n}": target for n, target in osc_plugin.COMMANDS.items()}
    assert listed == {k: v for k, v in declared.items() if k != "loadbalancer_upgrade"}
    overview = osc_plugin.Overview(_OpenStackShell(None), None)  # type: ignore[arg-type]
    out = io.StringIO()
    overview.get_parser("openstack loadbalancer upgrade").print_help(out)
    text = out.getvalue()
    assert "Upgrade Octavia load balancers blue/green" in text and "--os-cloud, OS_CLOUD" in text
    for name in osc_plugin.COMMANDS:
        (line,) = [line for line in text.splitlines() if line.startswith(f"  {name} ")]
        assert "Changes" in line, line


class _OpenStackShell:
    """What a command sees of the openstack client's App: its options (--os-cloud) and streams."""

    def __init__(self, cloud: str | None) -> None:
        self.options = argparse.Namespace(cloud=cloud, verbose_level=1)
        self.stdout = sys.stdout
        self.command_manager = argparse.Namespace(namespace="openstack.cli")


def test_the_plugin_takes_the_cloud_from_the_openstack_options() -> None:
    from lbswap.cli.campaign import Status

    command = Status(_OpenStackShell("prod"), None, cmd_name="loadbalancer upgrade status")  # type: ignore[arg-type]
    parser = command.get_parser("openstack loadbalancer upgrade status")
    args = command.settings(parser.parse_args(["--journal", "/tmp/j.sqlite"]), "json")
    assert (args.backend, args.os_cloud, args.journal, args.command) == (
        "openstack:prod",
        None,
        "/tmp/j.sqlite",
        "status",
    )
    no_name = Status(_OpenStackShell(None), None, cmd_name="loadbalancer upgrade status")  # type: ignore[arg-type]
    assert no_name.settings(parser.parse_args([]), "json").backend == "openstack"  # the OS_* variables


def test_a_plugin_command_runs_with_lbswap_behaviour(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lbswap.cli.inventory import Inventory

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = tmp_path / "cloud.json"
    ids = fake.seed_sample(path, 2)
    command = Inventory(_OpenStackShell("prod"), None, cmd_name="loadbalancer upgrade inventory")  # type: ignore[arg-type]
    parser = command.get_parser("openstack loadbalancer upgrade inventory")
    assert command.run(parser.parse_args(["--backend", f"fake:{path}", "-f", "json"])) == 0
    assert sorted(lb["id"] for lb in json.loads(capsys.readouterr().out)) == sorted(ids)
    # an error is one line and exit 2 under the openstack client too, with the JSON reader's document
    bad = parser.parse_args(["--backend", "nope:x", "-f", "json"])
    assert command.run(bad) == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["exit_code"] == 2 and err.strip().count("\n") == 0 and "unknown backend" in err
