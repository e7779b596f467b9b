"""The steps after the flip: drain the source, retire it (forward only), give a Kubernetes-managed clone the
source's name."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from lbswap.errors import CloudTimeout, NotFound, SwapFailed
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
            src = from_json(LoadBalancer, source)
            if clone_id is not None:  # I3: never retire a source a floating IP still reaches
                ports = set(src.vip_port_ids())
                for fip in src.floating_ips:
                    try:
                        current = ctx.cloud.get_floating_ip(fip.id)
                    except NotFound:
                        continue
                    if current.port_id in ports:
                        raise SwapFailed(f"floating IP {fip.floating_ip_address} still points at the source")
            wait_gone(ctx, ctx.lb_id, self.step, timeout=ctx.options.delete_timeout)


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
