"""Transient errors of reads retried once, at the cloud boundary: every read (``list_*``, ``get_*``, ``read_*``
and the pre-flight checks) repeats with exponential backoff and full jitter within a bounded time.

Side effects are never repeated here: a create or a move that failed may have taken effect, and only the
workflow can look for its earlier effect before acting again (find-before-act). Everything that is not a read
is the wrapped cloud's own attribute, unchanged.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from lbswap.clouds.base import Clock, Cloud
from lbswap.errors import CloudError, CloudTimeout, ConfigError

log = logging.getLogger(__name__)

#: a method whose name starts with one of these only reads, on every backend (and on any future one)
READ_PREFIXES = ("list_", "get_", "read_")
#: reads whose names do not say so
OTHER_READS = frozenset({"subnet_free_addresses", "can_read_secret"})
#: too many requests: the API asks to come back later
TOO_MANY_REQUESTS = 429
#: overrides the budget of every cloud :func:`lbswap.clouds.open_cloud` opens; 0 turns retries off
BUDGET_ENV = "LBSWAP_READ_RETRY_SECONDS"


def is_read(name: str) -> bool:
    """Whether the Cloud method ``name`` only reads, so repeating it cannot change the cloud."""
    return name.startswith(READ_PREFIXES) or name in OTHER_READS


def transient(exc: CloudError) -> bool:
    """An error that the same request may not meet again: a timeout, a server-side error, or throttling.

    A 404, 409, 412 or any other 4xx is the cloud's answer about the request itself: repeating it is pointless.
    """
    status = exc.status_code or 0
    return isinstance(exc, CloudTimeout) or status >= 500 or status == TOO_MANY_REQUESTS


@dataclass(frozen=True)
class RetryPolicy:
    """How long a read keeps trying: the n-th retry waits a random time in ``[0, min(max_delay,
    first_delay * 2**(n-1))]`` ("full jitter"), and no retry starts later than ``budget`` seconds after the
    first attempt began (on the cloud's clock)."""

    budget: float = 60.0
    first_delay: float = 0.5
    max_delay: float = 8.0

    def cap(self, retry: int) -> float:
        """The longest wait before retry number ``retry`` (1 for the first)."""
        return min(self.max_delay, self.first_delay * 2.0 ** min(retry - 1, 62))


def policy_from_env(environ: Mapping[str, str] = os.environ) -> RetryPolicy:
    """The default policy, its budget taken from ``$LBSWAP_READ_RETRY_SECONDS`` when set.

    :raises ConfigError: the value is not a finite number of seconds, at least 0.
    """
    text = environ.get(BUDGET_ENV, "").strip()
    if not text:
        return RetryPolicy()
    try:
        budget = float(text)
    except ValueError:
        budget = math.nan
    if not math.isfinite(budget) or budget < 0:
        raise ConfigError(f"{BUDGET_ENV}={text!r}: give a number of seconds, at least 0 (0: reads are not retried)")
    return RetryPolicy(budget=budget)


class RetryingCloud:
    """A Cloud whose reads retry transient errors; every other attribute is the wrapped cloud's own.

    ``retries`` counts the retries made so far (for benchmarks and tests). The wrapped cloud is ``wrapped``.
    """

    def __init__(self, cloud: Any, *, policy: RetryPolicy | None = None, rng: random.Random | None = None) -> None:
        self.wrapped = cloud
        self.policy = policy or RetryPolicy()
        self.retries = 0
        # jitter only spreads clients apart: it needs no cryptographic randomness
        self._rng = rng or random.Random()  # noqa: S311
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        # only called for what this object does not have itself; dunders (copy, pickle) must not reach the cloud
        if name.startswith("__") or name == "wrapped":
            raise AttributeError(name)
        attr = getattr(self.wrapped, name)
        if is_read(name) and callable(attr):
            return self._retrying(name, attr)
        return attr

    def __repr__(self) -> str:
        return f"RetryingCloud({self.wrapped!r})"

    def _retrying(self, name: str, read: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(read)
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._call(name, read, args, kwargs)

        return call

    def _call(self, name: str, read: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        clock: Clock = self.wrapped.clock
        started = clock.now()
        attempt = 0
        while True:
            try:
                return read(*args, **kwargs)
            except CloudError as exc:
                if not transient(exc):
                    raise
                attempt += 1
                left = started + self.policy.budget - clock.now()
                if left <= 0:
                    log.debug("%s: giving up after %d attempts: %s", name, attempt, _one_line(exc))
                    raise
                with self._lock:
                    delay = min(left, self._rng.uniform(0.0, self.policy.cap(attempt)))
                    self.retries += 1
                # the arguments may hold secrets (a TLS reference): only the method and the error are logged
                log.debug("%s: retry %d in %.2f s after: %s", name, attempt, delay, _one_line(exc))
            clock.sleep(delay)


def with_read_retries(cloud: Any, *, policy: RetryPolicy | None = None, rng: random.Random | None = None) -> Cloud:
    """``cloud`` with its reads retried on transient errors (see :class:`RetryingCloud`)."""
    return cast(Cloud, RetryingCloud(cloud, policy=policy, rng=rng))


def unwrap(cloud: Any) -> Any:
    """The backend itself under any :class:`RetryingCloud` (for its backend-specific methods' types)."""
    while isinstance(cloud, RetryingCloud):
        cloud = cloud.wrapped
    return cloud


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
