"""The steps after the flip: drain the source, retire it (forward only), give a Kubernetes-managed clone the
source's name."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from lbswap.errors import CloudTimeout
from lbswap.model import LoadBalancer, from_json
from lbswap.workflow.context import Step
from lbswap.workflow.waits import drain, wait_gone, wait_status


class Drain(Step):
    """Established flows stay on the source (conntrack): wait until it reports no active connection."""

    step = "drain"

    def execute(self, source: dict[str, Any]) -> dict[str, Any]:
        with self.reporting():
            return drain(self.ctx, self.step)


class Retire(Step):
    """Delete the source (cascade). Forward only: from here on nothing is rolled back."""

    step = "retire"

    def execute(self, source: dict[str, Any], clone_id: str | None = None) -> None:
        with self.reporting():
            ctx = self.ctx
            # I3 and I8 in one read: right before each delete, wait_gone re-reads the floating IPs on the source's
            # VIP ports (the snapshot's: a load balancer's VIP ports never change) and refuses while any points
            # at the source, whether or not there is a clone
            ports = from_json(LoadBalancer, source).vip_port_ids()
            wait_gone(ctx, ctx.lb_id, self.step, timeout=ctx.options.delete_timeout, ports=ports)


class RenameClone(Step):
    """Kubernetes-managed: give the clone the source's name once the source is gone."""

    step = "rename-clone"

    def execute(self, source: dict[str, Any], clone_id: str) -> None:
        with self.reporting():
            ctx = self.ctx
            name = source["name"]
            current = wait_status(ctx, clone_id, self.step, timeout=ctx.options.ready_timeout)
            if current.name != name:
                with suppress(CloudTimeout):
                    ctx.cloud.rename_load_balancer(clone_id, name)
                wait_status(ctx, clone_id, self.step, timeout=ctx.options.ready_timeout)
