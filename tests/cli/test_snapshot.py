"""`snapshot -o` writes all or nothing; a bad snapshot file is one line naming the load balancer and the field."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lbswap import model
from lbswap.cli import snapshot_file
from lbswap.clouds import fake
from lbswap.errors import BadInput
from tests.conftest import RunCli


@pytest.fixture
def snapshot(tmp_path: Path, run_cli: RunCli) -> tuple[list[str], dict[str, Any]]:
    path = tmp_path / "cloud.json"
    assert run_cli(["fake", "seed", str(path), "--sample", "3"]).returncode == 0
    backend = ["--backend", f"fake:{path}"]
    out = tmp_path / "snap.json"
    result = run_cli([*backend, "snapshot", "-o", str(out)])
    assert result.returncode == 0, result.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    return backend, json.loads(out.read_text())


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("missing/dir/snap.json", "does not exist"),
        (".", "it is a directory"),
        ("/proc/lbswap-snapshot.json", "cannot write"),  # unwritable even for root
    ],
)
def test_snapshot_output_errors(
    run_cli: RunCli, snapshot: tuple[list[str], dict[str, Any]], tmp_path: Path, target: str, expected: str
) -> None:
    backend, _ = snapshot
    path = target if target.startswith("/") else str(tmp_path / target)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli([*backend, "snapshot", "-o", path])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing written"
    assert result.stdout == ""


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "snap.json"
    target.write_text("the old snapshot")

    def full(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(BadInput, match="No space left on device; nothing was written"):
        snapshot_file.write_whole(target, "new", what="the snapshot")
    assert [p.name for p in tmp_path.iterdir()] == ["snap.json"] and target.read_text() == "the old snapshot"


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What `lbswap snapshot` writes for a fake cloud of three load balancers (built in-process)."""
    path = tmp_path_factory.mktemp("snapshot") / "cloud.json"
    fake.seed_sample(path, 3)
    cloud = fake.FakeCloud(path)
    graphs = [model.to_json(cloud.read_graph(lb.id)) for lb in cloud.list_load_balancers()]
    return {"lbswap_snapshot": 1, "load_balancers": graphs}


def _lb(doc: dict[str, Any], index: int = 1) -> dict[str, Any]:
    lb: dict[str, Any] = doc["load_balancers"][index]
    return lb


BAD: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("not a snapshot", lambda d: {"hello": 1}, "is not an `lbswap snapshot` document"),
    ("a list", lambda d: [], "is not an `lbswap snapshot` document"),
    ("not a list", lambda d: {**d, "load_balancers": {}}, "is not an `lbswap snapshot` document"),
    ("lb a string", lambda d: {**d, "load_balancers": ["x"]}, 'load_balancers[0]: it must be an object, not "x"'),
    ("no id", lambda d: _lb(d).pop("id"), "load_balancers[1]: field id is missing"),
    ("no name", lambda d: _lb(d).pop("name"), '(id "{id}"): field name is missing'),
    ("id null", lambda d: _lb(d).update(id=None), "load_balancers[1]: field id is null"),
    ("listeners", lambda d: _lb(d).update(listeners="x"), '(id "{id}"): field listeners must be a list'),
    (
        "port",
        lambda d: _lb(d)["listeners"][0].update(protocol_port="eighty"),
        '(id "{id}"): field listeners[0].protocol_port must be a whole number, not "eighty"',
    ),
    (
        "port bool",
        lambda d: _lb(d)["listeners"][0].update(protocol_port=True),
        "field listeners[0].protocol_port must be a whole number, not true",
    ),
    (
        "fip address",
        lambda d: _lb(d)["floating_ips"][0].pop("floating_ip_address"),
        '(id "{id}"): field floating_ips[0].floating_ip_address is missing',
    ),
    ("tags", lambda d: _lb(d).update(tags="env=prod"), 'field tags must be a list, not "env=prod"'),
    ("tag", lambda d: _lb(d).update(tags=[1]), "field tags[0] must be a string, not 1"),
    (
        "pool reference",
        lambda d: _lb(d).update(pools=[]),
        '(id "{id}"): field listeners[0].default_pool_id names pool',
    ),
    (
        "floating IP twice",
        lambda d: d["load_balancers"][2].update(floating_ips=_lb(d)["floating_ips"]),
        "is also a floating IP of load_balancers[1]",
    ),
    (
        "duplicate",
        lambda d: d["load_balancers"].append(copy.deepcopy(_lb(d))),
        'load_balancers[1] and load_balancers[3] have the same id "{id}"',
    ),
]


@pytest.mark.parametrize(("case", "edit", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_snapshot_names_the_load_balancer_and_field(
    document: dict[str, Any],
    tmp_path: Path,
    case: str,
    edit: Callable[[dict[str, Any]], Any],
    expected: str,
) -> None:
    lb_id = _lb(document)["id"]
    doc = copy.deepcopy(document)
    replaced = edit(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(replaced if isinstance(replaced, dict | list) else doc))
    with pytest.raises(BadInput) as info:
        snapshot_file.read_snapshot(str(path))
    assert expected.replace("{id}", lb_id) in str(info.value)
    assert str(path) in str(info.value)


def test_bad_snapshot_through_fake_seed(
    run_cli: RunCli, snapshot: tuple[list[str], dict[str, Any]], tmp_path: Path
) -> None:
    document = copy.deepcopy(snapshot[1])
    document["load_balancers"].append(copy.deepcopy(_lb(document)))
    bad = tmp_path / "dup.json"
    bad.write_text(json.dumps(document))
    result = run_cli(["fake", "seed", str(tmp_path / "copy.json"), "--from-snapshot", str(bad), "-f", "json"])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f'have the same id "{_lb(document)["id"]}"' in lines[0], result.stderr
    assert json.loads(result.stdout)["exit_code"] == 2
    assert not (tmp_path / "copy.json").exists()


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b""])
def test_unreadable_snapshot_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(BadInput, match="is not JSON"):
        snapshot_file.read_snapshot(str(path))
    with pytest.raises(BadInput, match="cannot read snapshot file"):
        snapshot_file.read_snapshot(str(tmp_path))


def test_a_good_snapshot_reads_back(document: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "good.json"
    path.write_text(json.dumps(document))
    graphs = snapshot_file.read_snapshot(str(path))
    assert [g.id for g in graphs] == [lb["id"] for lb in document["load_balancers"]]
