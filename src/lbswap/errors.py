"""The lbswap error tree. Foreign exceptions (openstacksdk, subprocess, sqlite) are translated once, at the
boundary that called them, with ``raise OurError(...) from exc``.

    LbswapError                      anything lbswap raises on purpose; ``exit_code`` is what the CLI returns
    +-- BadInput (exit 2)            the request cannot be carried out; nothing was changed
    |   +-- UnknownLoadBalancer      no load balancer matches the id or name
    |   +-- PreflightFailed          the plan found a blocking finding (state, quota, TLS, provider...)
    |   +-- ConfigError              clouds.yaml, --backend or another option is malformed
    |   +-- JournalError             the journal is unreadable, corrupted, or from a newer lbswap
    |   +-- LockHeld                 another unfinished campaign holds this load balancer
    |   +-- LeaseHeld                another live process drives this campaign (I9)
    |   +-- WrongCloud               the campaign belongs to another cloud (I10)
    |   +-- StorageError             the journal's directory or disk cannot take writes (nothing changed)
    +-- CloudError                   a cloud API call failed; carries status_code and request_id
    |   +-- NotFound                 404
    |   +-- Conflict                 409: the object is immutable (PENDING_*) or in use
    |   +-- PreconditionFailed       412: an If-Match revision did not match (floating IP compare-and-swap)
    |   +-- QuotaExceeded            403/409 over quota
    |   +-- CloudTimeout             the request did not answer in time (it may or may not have happened)
    +-- WaitFailed                   a resource went to ERROR, or did not reach the wanted status in time
    +-- FloatingIPHijacked           a floating IP moved somewhere lbswap did not put it: stop, never overwrite
    +-- SwapFailed                   a swap step failed; names the load balancer and the step

    StopSwap (BaseException)         stop driving at once, without reverting: a signal, a lost lease, a lost
    +-- ...                          or full journal. Taskflow lets it through, leaving the step in flight
                                     for `lbswap resume` (every step is idempotent); see workflow/guard.py
"""

from __future__ import annotations


class LbswapError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, lb: str | None = None, step: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.lb = lb
        self.step = step

    def __str__(self) -> str:
        parts = []
        if self.lb:
            parts.append(f"load balancer {self.lb}")
        if self.step:
            parts.append(f"step {self.step}")
        prefix = ", ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class BadInput(LbswapError):
    exit_code = 2


class UnknownLoadBalancer(BadInput):
    pass


class PreflightFailed(BadInput):
    pass


class ConfigError(BadInput):
    pass


class JournalError(BadInput):
    pass


class LockHeld(BadInput):
    def __init__(self, message: str, *, lb: str | None = None, campaign: str = "") -> None:
        super().__init__(message, lb=lb)
        self.campaign = campaign


class CloudError(LbswapError):
    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        lb: str | None = None,
        step: str | None = None,
    ) -> None:
        super().__init__(message, lb=lb, step=step)
        self.status_code = status_code
        self.request_id = request_id

    def __str__(self) -> str:
        text = super().__str__()
        extra = []
        if self.status_code:
            extra.append(f"HTTP {self.status_code}")
        if self.request_id:
            extra.append(f"request {self.request_id}")
        return f"{text} ({', '.join(extra)})" if extra else text


class NotFound(CloudError):
    pass


class Conflict(CloudError):
    pass


class PreconditionFailed(CloudError):
    pass


class QuotaExceeded(CloudError):
    pass


class CloudTimeout(CloudError):
    pass


class WaitFailed(LbswapError):
    pass


class FloatingIPHijacked(LbswapError):
    pass


class SwapFailed(LbswapError):
    pass


class LeaseHeld(BadInput):
    pass


class WrongCloud(ConfigError):
    pass


class StorageError(JournalError):
    pass


class StopSwap(BaseException):
    """Stop driving a campaign now, leaving what is in flight to ``lbswap resume``.

    A ``BaseException`` on purpose: taskflow reverts on ``Exception``; this must unwind without reverting,
    exactly like a crash, which every step already survives. ``exit_code`` is what the CLI returns.
    """

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
