"""The fake's state file as operators meet it: its identity, broken files, overwrites, and read faults."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lbswap.clouds import fake


def test_each_seed_is_a_new_cloud_and_a_copy_is_the_same_cloud(tmp_path: Path) -> None:
    fake.seed_sample(tmp_path / "a.json", 2)
    fake.seed_sample(tmp_path / "b.json", 2)
    shutil.copy(tmp_path / "a.json", tmp_path / "copy.json")
    a, b, copy = (fake.FakeCloud(tmp_path / n).identity() for n in ("a.json", "b.json", "copy.json"))
    assert a.startswith("fake:") and len(a) > len("fake:") + 16
    assert a != b, "two seeds are two clouds, even with the same content"
    assert a == copy, "the identity is in the file, not its path"
    fake.seed_sample(tmp_path / "a.json", 2)
    assert fake.FakeCloud(tmp_path / "a.json").identity() != a, "a new seed replaces the cloud"


def test_a_state_file_without_an_identity_gets_one_that_stays(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    fake.seed_sample(path, 2)
    state = json.loads(path.read_text())
    del state["cloud_id"]
    path.write_text(json.dumps(state))
    (tmp_path / "old.json.gen").unlink()
    first = fake.FakeCloud(path).identity()
    assert first.startswith("fake:") and first != "fake:None"
    assert fake.FakeCloud(path).identity() == first, "another process must see the same identity"
    assert json.loads(path.read_text())["cloud_id"] == first.removeprefix("fake:")
