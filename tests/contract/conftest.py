"""The contract suite's backend: ``contract_cloud`` is a Harness (tests/contract/harness.py) around a fresh fake
in tier 1 and around the real Octavia and Neutron APIs in tier 2 (marker ``openstack``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.contract.harness import Harness

OPENSTACK = [
    pytest.mark.openstack,
    # openstacksdk warns about its own internals (metrics support, its own deprecated parameters)
    pytest.mark.filterwarnings("ignore::openstack.warnings._RemovedInSDKWarning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.OpenStackDeprecationWarning"),
]


@pytest.fixture(scope="session")
def openstack_conn() -> Any:
    from tests.clouds import openstack_stack as stack

    return stack.connect()


@pytest.fixture(scope="session")
def openstack_net(openstack_conn: Any) -> Any:
    from tests.clouds import openstack_stack as stack

    return stack.ensure_network(openstack_conn)


@pytest.fixture(params=[pytest.param("fake", id="fake"), pytest.param("openstack", id="openstack", marks=OPENSTACK)])
def contract_cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    harness: Harness
    if request.param == "fake":
        from tests.contract.backends import FakeHarness

        harness = FakeHarness(tmp_path / "cloud.json")
    else:
        from tests.contract.backends import OpenStackHarness

        harness = OpenStackHarness(request.getfixturevalue("openstack_conn"), request.getfixturevalue("openstack_net"))
    try:
        yield harness
    finally:
        harness.cleanup()
        harness.cloud.close()
