"""Tier 2: a whole swap through the OpenStack client, `openstack --os-cloud lbswap-test loadbalancer upgrade run
... -f json`, against the real Octavia and Neutron API servers (needs the `[osc]` extra installed, which
scripts/test-openstack.sh does). A missing client or stack fails these tests; it never skips them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lbswap.clouds.openstack import OpenStackCloud
from tests.clouds import openstack_stack as stack
from tests.clouds.test_openstack import NO_PROBES, check_done, clouds_yaml, make_source  # noqa: F401
from tests.conftest import SRC

pytestmark = [
    pytest.mark.openstack,
    pytest.mark.filterwarnings("ignore::openstack.warnings._RemovedInSDKWarning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.OpenStackDeprecationWarning"),
]


def _openstack(args: list[str], tmp_path: Path, clouds: Path) -> subprocess.CompletedProcess[str]:
    client = Path(sys.executable).with_name("openstack")
    if not client.exists():
        pytest.fail(f"no {client}: install the client with `pip install -c constraints.txt -e '.[osc]'`")
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "OS_CLIENT_CONFIG_FILE": str(clouds),
    }
    return subprocess.run(
        [str(client), "--os-cloud", stack.CLOUD, *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_a_swap_through_the_openstack_client(
    conn: Any,
    net: stack.Net,
    cloud: OpenStackCloud,
    clouds_yaml: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    source = make_source(conn, net, cloud, stack.full_body(net, stack.unique("osc")))
    journal = ["--journal", str(tmp_path / "journal.sqlite")]
    upgrade = ["loadbalancer", "upgrade"]
    run = _openstack(
        [*upgrade, "run", "--lb", source.id, "--yes", "--drain-timeout", "0", *NO_PROBES, *journal, "-f", "json"],
        tmp_path,
        clouds_yaml,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    campaign = json.loads(run.stdout)
    assert campaign["backend"] == f"openstack:{stack.CLOUD}"  # the cloud the openstack options name
    (swap,) = campaign["swaps"]
    check_done(conn, cloud, source, swap)
    status = _openstack([*upgrade, "status", campaign["campaign_id"], *journal, "-f", "json"], tmp_path, clouds_yaml)
    assert status.returncode == 0, status.stderr
    (document,) = json.loads(status.stdout)
    assert document["counts"]["done"] == 1
    rows = _openstack([*upgrade, "status", *journal, "-c", "id", "-c", "state", "-f", "value"], tmp_path, clouds_yaml)
    assert rows.stdout.split() == [source.id, "done"]
    helped = _openstack(["help", *upgrade, "run"], tmp_path, clouds_yaml)
    assert helped.returncode == 0 and "Changes the cloud" in helped.stdout, helped.stderr
