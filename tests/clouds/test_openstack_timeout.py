"""A request that hangs must end as a timeout: lbswap sets api_timeout unless clouds.yaml sets its own.
Tier 1: opening the cloud contacts nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbswap.clouds.openstack import DEFAULT_API_TIMEOUT, OpenStackCloud

CLOUDS = """clouds:
  plain:
    auth_type: none
    load_balancer_endpoint_override: http://127.0.0.1:9
  patient:
    auth_type: none
    api_timeout: 7
    load_balancer_endpoint_override: http://127.0.0.1:9
"""


@pytest.mark.filterwarnings("ignore::openstack.warnings.OpenStackDeprecationWarning")
@pytest.mark.filterwarnings("ignore::openstack.warnings._RemovedInSDKWarning")
@pytest.mark.parametrize(("cloud", "timeout"), [("plain", DEFAULT_API_TIMEOUT), ("patient", 7.0)])
def test_api_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cloud: str, timeout: float) -> None:
    (tmp_path / "clouds.yaml").write_text(CLOUDS)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
    opened = OpenStackCloud(cloud)
    try:
        assert opened._conn.session.timeout == timeout
    finally:
        opened.close()
