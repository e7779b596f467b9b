"""waits.wait_status: which errors of one poll are polled again (timeouts, 5xx, 429 throttling) and which end the
wait (any other 4xx). A scripted cloud on a simulated clock."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from lbswap.clouds.base import Cloud
from lbswap.errors import CloudError, CloudTimeout
from lbswap.workflow.context import SwapContext, SwapOptions
from lbswap.workflow.waits import wait_status


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class Polled:
    def __init__(self, answers: list[Any]) -> None:
        self.clock = Clock()
        self.answers = answers
        self.polls = 0

    def get_load_balancer(self, lb_id: str) -> Any:
        self.polls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return SimpleNamespace(provisioning_status=answer)


def ctx(cloud: Polled) -> SwapContext:
    return SwapContext(cloud=cast(Cloud, cloud), campaign_id="c", lb_id="lb-1", lb_name="web", options=SwapOptions())


@pytest.mark.parametrize(
    "error",
    [CloudError("throttled", status_code=429), CloudError("unavailable", status_code=503), CloudTimeout("timeout")],
)
def test_a_transient_error_of_one_poll_is_polled_again(error: CloudError) -> None:
    cloud = Polled([error, "PENDING_UPDATE", "ACTIVE"])
    assert wait_status(ctx(cloud), "lb-1", "wait", timeout=60).provisioning_status == "ACTIVE"
    assert cloud.polls == 3


def test_another_client_error_ends_the_wait() -> None:
    cloud = Polled([CloudError("forbidden", status_code=403), "ACTIVE"])
    with pytest.raises(CloudError, match="forbidden"):
        wait_status(ctx(cloud), "lb-1", "wait", timeout=60)
    assert cloud.polls == 1
