"""Two campaigns never take the same load balancer: the second exits 2 naming the campaign that holds it."""

from __future__ import annotations

import json
from pathlib import Path

from lbswap.clouds import fake


def test_second_run_on_a_load_balancer_held_by_an_unfinished_campaign(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "cloud.json"
    ids = fake.seed_sample(path, 3)
    backend = ["--backend", f"fake:{path}", "--journal", str(tmp_path / "journal.sqlite")]
    fake.set_faults(path, crash_at=1)  # the first run dies right after creating the clone
    first = run_cli([*backend, "run", "--lb", ids[0], "--yes"])
    assert first.returncode == 137
    fake.clear_faults(path)
    status = json.loads(run_cli([*backend, "status", "-f", "json"]).stdout)
    holder = status[0]["campaign_id"]
    before = fake.FakeCloud(path).snapshot_state()["side_effects"]

    second = run_cli([*backend, "run", "--lb", ids[0], "--yes"])
    assert second.returncode == 2
    assert f"campaign {holder} still holds it" in second.stderr
    assert ids[0] in second.stderr
    assert fake.FakeCloud(path).snapshot_state()["side_effects"] == before, "the second run changed the cloud"

    # another load balancer is free to go meanwhile, and once resumed the first is released
    assert run_cli([*backend, "run", "--lb", ids[1], "--yes"]).returncode == 0
    assert run_cli([*backend, "resume", holder]).returncode == 0


def test_a_kept_source_holds_its_load_balancer_until_finalize(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "cloud.json"
    ids = fake.seed_sample(path, 2)
    backend = ["--backend", f"fake:{path}", "--journal", str(tmp_path / "journal.sqlite")]
    first = run_cli([*backend, "run", "--lb", ids[0], "--yes", "--keep-source", "60", "-f", "json"])
    assert first.returncode == 0, first.stderr
    campaign = json.loads(first.stdout)["campaign_id"]
    again = run_cli([*backend, "run", "--lb", ids[0], "--yes"])
    assert again.returncode == 2 and campaign in again.stderr
    assert run_cli([*backend, "finalize", campaign]).returncode == 0
