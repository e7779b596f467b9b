"""Fixtures of the tier 2 tests (tests marked ``openstack``): one connection, network and backend per module.
The stack's helpers are imported only when a test asks for them (tier 1 never does)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from lbswap.clouds.openstack import OpenStackCloud
    from tests.clouds.openstack_stack import Net


@pytest.fixture(scope="module")
def conn() -> Any:
    from tests.clouds import openstack_stack as stack

    return stack.connect()


@pytest.fixture(scope="module")
def net(conn: Any) -> Net:
    from tests.clouds import openstack_stack as stack

    return stack.ensure_network(conn)


@pytest.fixture(scope="module")
def cloud(conn: Any) -> Iterator[OpenStackCloud]:
    from lbswap.clouds.openstack import OpenStackCloud
    from tests.clouds import openstack_stack as stack

    backend = OpenStackCloud(stack.CLOUD)
    yield backend
    backend.close()
