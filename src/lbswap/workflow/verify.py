"""Traffic through the clone before the flip (VerifyClone) and through the moved floating IPs after it (Watch).

The decisions (:func:`verify_verdict`, :func:`watch_verdict`) are pure and table-tested; the steps only probe
through the Cloud protocol (:meth:`~lbswap.clouds.base.Cloud.probe_listener`) and read the clone's status.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lbswap import clone as clone_mod
from lbswap.clouds.base import ProbeResult
from lbswap.errors import CloudError, CloudTimeout, LbswapError, NotFound, QuotaExceeded, SwapFailed
from lbswap.model import FloatingIP, Listener, LoadBalancer, from_json
from lbswap.planning.checks import HTTP_LIKE, NOT_PROBED, listener_label
from lbswap.planning.checks import main_fip as _main_fip
from lbswap.workflow.context import Step, SwapContext
from lbswap.workflow.steps_clone import HEALTH_RANK
from lbswap.workflow.waits import release_temp_fips, temp_fip_tags

LOG = logging.getLogger(__name__)

__all__ = ["HTTP_LIKE", "LB_KEY", "NOT_PROBED", "VerifyClone", "Watch", "listener_label", "verify_verdict"]

LB_KEY = "load balancer"
# provisioning statuses the clone may pass through during the watch without tripping it (an operator's update)
WATCH_STATUSES = ("ACTIVE", "PENDING_UPDATE")


def _describe(result: ProbeResult) -> str:
    if not result.ok:
        return result.error or "failed"
    return f"status {result.status}" if result.status is not None else "connected"


# --- decisions (pure) -----------------------------------------------------------------------------------------


def verify_verdict(listener: Listener, clone: ProbeResult | None, source: ProbeResult | None) -> tuple[bool, str]:
    """Whether the clone's listener answers like the source's: ``(ok, reason)``; ``ok`` False stops the swap.

    ``clone`` None: not probed (UDP without a payload, SCTP). ``source`` None: the source has no floating IP to
    compare with, so the clone must merely answer (HTTP: no 5xx). A listener that fails on both is no worse on
    the clone. HTTP: equal status class; TERMINATED_HTTPS: also the same certificate (SNI as given).
    """
    if clone is None:
        if listener.protocol == "UDP":
            return True, "not verified: UDP without --verify-udp-payload"
        return True, f"not verified: no probe for {listener.protocol}"
    if not clone.reachable:
        return True, f"not verified: {clone.error or 'the backend cannot reach the clone'}"
    if source is None or not source.reachable:
        if not clone.ok:
            return False, f"the clone: {_describe(clone)} (no source floating IP to compare with)"
        if clone.status is not None and clone.status >= 500:
            return False, f"the clone answered {clone.status} (no source floating IP to compare with)"
        return True, f"the clone: {_describe(clone)} (no source floating IP to compare with)"
    if not clone.ok:
        if source.ok:
            return False, f"the clone: {_describe(clone)}; the source: {_describe(source)}"
        return True, f"fails on both (clone: {_describe(clone)}; source: {_describe(source)}): no worse"
    if not source.ok:
        return True, f"the clone: {_describe(clone)}; the source: {_describe(source)}"
    if listener.protocol in HTTP_LIKE and (clone.status or 0) // 100 != (source.status or 0) // 100:
        return False, f"the clone answered {clone.status}, the source {source.status}"
    if listener.protocol == "TERMINATED_HTTPS" and clone.cert_fingerprint != source.cert_fingerprint:
        return False, (
            f"the clone presents certificate sha256:{(clone.cert_fingerprint or '')[:16]}, "
            f"the source sha256:{(source.cert_fingerprint or '')[:16]}"
        )
    return True, f"same ({_describe(clone)})"


@dataclass(frozen=True)
class WatchSample:
    """One look at the clone after the flip."""

    at: float
    provisioning_status: str
    health: Mapping[str, str]  # LB_KEY and "member ADDRESS:PORT" -> operating status
    request_errors: int
    active_connections: int
    probe_failures: tuple[str, ...] = ()  # "HTTP:80 via 203.0.113.10: refused"


def health_of(lb: LoadBalancer) -> dict[str, str]:
    """The operating status of the load balancer and of each member, keyed alike on a source and its clone."""
    names = clone_mod.pool_names(lb)
    health = {LB_KEY: lb.operating_status}
    for pool in lb.pools:
        for m in pool.members:
            health[f"member {m.address}:{m.protocol_port} of pool {names[pool.id]}"] = m.operating_status
    return health


def watch_verdict(samples: Sequence[WatchSample], source_health: Mapping[str, str], max_errors: int) -> str | None:
    """Why the watch trips on the latest sample, or None: the clone left ACTIVE, something on it is less healthy
    than on the source, or its request errors since the first sample plus every failed probe pass
    ``max_errors``."""
    if not samples:
        return None
    last = samples[-1]
    if last.provisioning_status not in WATCH_STATUSES:
        return f"the clone went {last.provisioning_status}"
    for key, status in source_health.items():
        got = last.health.get(key, "ERROR")
        if HEALTH_RANK.get(got, 0) < HEALTH_RANK.get(status, 0):
            return f"{key} is {got} on the clone, {status} on the source"
    errors = max(0, last.request_errors - samples[0].request_errors)
    failures = [f for s in samples for f in s.probe_failures]
    if errors + len(failures) > max_errors:
        what = f"{errors} request error(s) and {len(failures)} failed probe(s)"
        last_failure = f"; last: {failures[-1]}" if failures else ""
        return f"{what} since the flip, more than --watch-max-errors {max_errors}{last_failure}"
    return None


# --- probing through the Cloud protocol ------------------------------------------------------------------------


_probes = 0
_CRASH_AT_PROBE = int(os.environ.get("LBSWAP_TEST_CRASH_AT_PROBE", "0") or 0)


def _crash_point() -> None:
    """Test hook: with LBSWAP_TEST_CRASH_AT_PROBE=N the process dies (exit 137) right before the Nth probe of
    the verify or the watch (the verify's first: its temporary floating IP is on the clone), as a SIGKILL would."""
    global _probes
    if _CRASH_AT_PROBE:
        _probes += 1
        if _probes == _CRASH_AT_PROBE:
            os._exit(137)


def _probe(ctx: SwapContext, address: str, listener: Listener) -> ProbeResult | None:
    """One probe of ``listener`` at ``address`` with the swap's options, or None where it is not probed."""
    options = ctx.options
    if listener.protocol in NOT_PROBED or (listener.protocol == "UDP" and not options.verify_udp_payload):
        return None
    _crash_point()
    payload = options.verify_udp_payload.encode() if options.verify_udp_payload else None
    return ctx.cloud.probe_listener(
        address,
        listener.protocol_port,
        listener.protocol,
        path=options.verify_path,
        host=options.verify_host,
        sni=options.verify_host,
        payload=payload,
        timeout=options.verify_timeout,
    )


class VerifyClone(Step):
    """Before any client sees the clone: a temporary floating IP on its VIP, each listener probed through it and
    through the source's floating IP, compared by :func:`verify_verdict`; the temporary floating IP is released
    before the step returns, whatever happened. A difference fails the swap, which taskflow then reverts."""

    step = "verify"

    def __init__(self, ctx: SwapContext) -> None:
        super().__init__(ctx, provides="verify")

    def execute(self, source: dict[str, Any], clone: dict[str, Any]) -> dict[str, Any]:
        with self.reporting():
            ctx = self.ctx
            if not ctx.options.verify:
                return self._record({"outcome": "skipped: --no-verify"})
            for address in release_temp_fips(ctx):  # left by an attempt that crashed
                ctx.emit(self.step, "info", f"released temporary floating IP {address} of an earlier attempt")
            src, dst = from_json(LoadBalancer, source), from_json(LoadBalancer, clone)
            front = _main_fip(src)
            if front is None or not dst.vip_port_id:
                return self._record({"outcome": "not verified: the source has no floating IP (no external network)"})
            started = ctx.cloud.clock.now()
            temp = self._attach(front.floating_network_id, dst.vip_port_id)
            try:
                verdicts, answering = self._compare(src, temp.floating_ip_address, front.floating_ip_address)
            finally:
                release_temp_fips(ctx)
            failed = {label: reason for label, (ok, reason) in verdicts.items() if not ok}
            outcome = "failed" if failed else "passed"
            if verdicts and all(r.startswith("not verified") for _ok, r in verdicts.values()):
                outcome = "not verified"
            seconds = round(ctx.cloud.clock.now() - started, 3)
            result = {
                "outcome": outcome,
                "seconds": seconds,
                "listeners": {k: r for k, (_ok, r) in verdicts.items()},
                "answering": answering,  # what the watch holds the clone to
            }
            self._record(result)
            if failed:
                label, reason = next(iter(failed.items()))
                raise SwapFailed(
                    f"verify: listener {label} of the clone differs from the source's: {reason}; "
                    "rolled back before any client saw the clone"
                )
            return result

    def _record(self, result: dict[str, Any]) -> dict[str, Any]:
        self.ctx.record_result("verify", result)
        return result

    def _attach(self, network: str, port: str) -> FloatingIP:
        ctx = self.ctx
        try:
            temp = ctx.cloud.create_floating_ip(floating_network_id=network, port_id=port, tags=temp_fip_tags(ctx))
        except QuotaExceeded as exc:
            raise SwapFailed(
                f"verify: no floating IP quota left for the temporary probe address: {exc.message}"
            ) from exc
        except CloudTimeout:
            found = [f for f in ctx.cloud.list_floating_ips(port_id=port) if set(temp_fip_tags(ctx)) <= set(f.tags)]
            if not found:
                raise
            temp = found[0]
        ctx.emit(self.step, "info", f"temporary floating IP {temp.floating_ip_address} on the clone")
        return temp

    def _compare(
        self, src: LoadBalancer, clone_address: str, source_address: str
    ) -> tuple[dict[str, tuple[bool, str]], list[str]]:
        """Each listener's verdict, and the listeners where the clone answered as the source did."""
        ctx = self.ctx
        clock = ctx.cloud.clock
        verdicts: dict[str, tuple[bool, str]] = {}
        answering: list[str] = []
        settle_until = clock.now() + ctx.options.verify_settle
        for listener in src.listeners:
            if not listener.admin_state_up:
                continue
            label = listener_label(listener)
            source_result = _probe(ctx, source_address, listener)
            if source_result is not None and not source_result.ok:  # one blip of the source is not its answer
                source_result = _probe(ctx, source_address, listener)
            while True:  # a new floating IP may take a moment to carry traffic
                ctx.check()
                clone_result = _probe(ctx, clone_address, listener)
                verdict = verify_verdict(listener, clone_result, source_result)
                if verdict[0] or clock.now() >= settle_until:
                    break
                clock.sleep(min(1.0, max(settle_until - clock.now(), 0.0)))
            verdicts[label] = verdict
            clone_answers = clone_result is not None and clone_result.reachable and clone_result.ok
            if verdict[0] and clone_answers and (source_result is None or source_result.ok):
                answering.append(label)
            ctx.emit(self.step, "info", f"{label}: {verdict[1]}")
        return verdicts, answering

    def revert(self, source: dict[str, Any], clone: dict[str, Any], result: Any = None, **kwargs: Any) -> None:
        with self.reverting():
            try:
                release_temp_fips(self.ctx)
            except LbswapError as exc:  # the clone's delete then refuses and names it too
                LOG.error("%s: could not release a temporary floating IP, release it by hand: %s", self.ctx.who, exc)


class Watch(Step):
    """After the flip, while the source still runs: probe through each moved floating IP every
    ``watch_interval`` and read the clone's status tree and statistics every ``stats_interval`` (Octavia
    refreshes them once per heartbeat), for ``watch`` seconds on the cloud's clock. A trip
    (:func:`watch_verdict`) fails the swap, which taskflow reverts: every floating IP flips back."""

    step = "watch"

    def __init__(self, ctx: SwapContext) -> None:
        super().__init__(ctx, provides="watch")

    def execute(self, source: dict[str, Any], clone: dict[str, Any], verify: dict[str, Any]) -> dict[str, Any]:
        with self.reporting():
            ctx = self.ctx
            options = ctx.options
            # probe only what the verify saw answering like the source (all of them when it did not run): a
            # listener that fails on the source too, or one this host cannot reach, is not the clone's fault
            wanted: set[str] | None = set(verify["answering"]) if "answering" in verify else None
            if options.watch <= 0:
                result: dict[str, Any] = {"outcome": "skipped: --watch 0"}
                ctx.record_result("watch", result)
                return result
            src, dst = from_json(LoadBalancer, source), from_json(LoadBalancer, clone)
            clock = ctx.cloud.clock
            source_health = health_of(ctx.cloud.read_graph(ctx.lb_id))
            started = clock.now()
            deadline = started + options.watch
            samples: list[WatchSample] = []
            status: tuple[str, dict[str, str], int, int] | None = None
            next_read = started
            while True:
                ctx.check()
                if clock.now() >= next_read:
                    status = self._read(dst.id) or status
                    next_read = clock.now() + options.stats_interval
                if status is not None:
                    samples.append(WatchSample(clock.now(), *status, self._probe_all(src, wanted)))
                reason = watch_verdict(samples, source_health, options.watch_max_errors)
                if reason is not None:
                    after = round(clock.now() - started, 3)
                    ctx.record_result(
                        "watch", {"outcome": "tripped", "reason": reason, "after_seconds": after, **_counts(samples)}
                    )
                    raise SwapFailed(f"watch: tripped {after:.0f} s after the flip: {reason}; flipping back")
                if clock.now() >= deadline:
                    break
                clock.sleep(min(options.watch_interval, max(deadline - clock.now(), 0.0)))
            result = {"outcome": "passed", "seconds": round(clock.now() - started, 3), **_counts(samples)}
            ctx.record_result("watch", result)
            return result

    def _read(self, clone_id: str) -> tuple[str, dict[str, str], int, int] | None:
        """The clone's provisioning status, health, request errors and active connections; None when a read
        failed (that says nothing about the clone)."""
        ctx = self.ctx
        try:
            graph = ctx.cloud.read_graph(clone_id)
            stats = ctx.cloud.get_stats(clone_id)
        except NotFound:
            return ("DELETED", {}, 0, 0)
        except CloudError as exc:
            LOG.warning("%s: a read of the watch failed: %s", ctx.who, exc)
            return None
        return (graph.provisioning_status, health_of(graph), stats.request_errors, stats.active_connections)

    def _probe_all(self, src: LoadBalancer, wanted: set[str] | None) -> tuple[str, ...]:
        failures: list[str] = []
        front = _main_fip(src)
        if front is None:
            return ()
        for listener in src.listeners:
            if not listener.admin_state_up or (wanted is not None and listener_label(listener) not in wanted):
                continue
            probed = _probe(self.ctx, front.floating_ip_address, listener)
            if probed is None or not probed.reachable:
                continue
            # the verify saw the clone answer like the source: a 5xx now is the clone failing its clients
            if not probed.ok or (probed.status or 0) >= 500:
                failures.append(f"{listener_label(listener)} via {front.floating_ip_address}: {_describe(probed)}")
                self.ctx.emit(self.step, "info", failures[-1])
        return tuple(failures)


def _counts(samples: Sequence[WatchSample]) -> dict[str, Any]:
    return {
        "samples": len(samples),
        "request_errors": max(0, samples[-1].request_errors - samples[0].request_errors) if samples else 0,
        "failed_probes": sum(len(s.probe_failures) for s in samples),
    }
