"""Reads retry transient errors at the cloud boundary; side effects never repeat; everything else is the
backend's own. A scripted cloud answers each call from a list, on a clock that only moves when told."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from lbswap.clouds import Cloud, fake, open_cloud, unwrap
from lbswap.clouds.retry import BUDGET_ENV, RetryingCloud, RetryPolicy, is_read, policy_from_env
from lbswap.errors import (
    CloudError,
    CloudTimeout,
    ConfigError,
    Conflict,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
)


class ManualClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


Step = Any  # a value to return, an exception to raise, or a callable of the clock doing either


class ScriptedCloud:
    """Each method answers from its script, in order; the last step repeats. Records (method, start time)."""

    kind = "scripted"

    def __init__(self, **scripts: Iterable[Step]) -> None:
        self.scripts = {name: iter(steps) for name, steps in scripts.items()}
        self.last: dict[str, Step] = {}
        self.clock = ManualClock()
        self.calls: list[tuple[str, float]] = []
        self.extra = "backend-specific"

    def _answer(self, name: str) -> Any:
        self.calls.append((name, self.clock.now()))
        step = next(self.scripts[name], self.last.get(name))
        self.last[name] = step
        if callable(step) and not isinstance(step, type):
            step = step(self.clock)
        if isinstance(step, BaseException):
            raise step
        return step

    def spec(self) -> str:
        return "scripted:"

    def publish_image(self, name: str) -> str:
        return self._answer("publish_image")

    def list_load_balancers(self, *, project_id: str | None = None) -> Any:
        return self._answer("list_load_balancers")

    def get_load_balancer(self, lb_id: str) -> Any:
        return self._answer("get_load_balancer")

    def can_read_secret(self, ref: str) -> Any:
        return self._answer("can_read_secret")

    def list_widgets(self) -> Any:  # a read a future backend might add
        return self._answer("list_widgets")

    def snapshot_state(self) -> Any:  # neither a read by name nor a side effect: passed through
        return self._answer("snapshot_state")

    def create_load_balancer(self, body: dict[str, Any]) -> Any:
        return self._answer("create_load_balancer")

    def delete_load_balancer(self, lb_id: str, *, cascade: bool = True) -> Any:
        return self._answer("delete_load_balancer")

    def move_floating_ip(self, fip_id: str, *, port_id: str, fixed_ip_address: str | None, if_revision: int) -> Any:
        return self._answer("move_floating_ip")

    def rename_load_balancer(self, lb_id: str, name: str) -> Any:
        return self._answer("rename_load_balancer")

    def failover_load_balancer(self, lb_id: str) -> Any:
        return self._answer("failover_load_balancer")

    def create_floating_ip(self, *, floating_network_id: str, port_id: str, tags: list[str]) -> Any:
        return self._answer("create_floating_ip")


def _503(n: int = 0) -> CloudError:
    return CloudError(f"service unavailable #{n}", status_code=503, request_id=f"req-{n}")


def _wrap(inner: ScriptedCloud, seed: int = 0, **policy: float) -> RetryingCloud:
    return RetryingCloud(inner, policy=RetryPolicy(**policy), rng=random.Random(seed))


def test_503_twice_then_the_answer() -> None:
    inner = ScriptedCloud(get_load_balancer=[_503(1), _503(2), "lb"])
    cloud = _wrap(inner)
    assert cloud.get_load_balancer("lb-1") == "lb"
    assert [c[0] for c in inner.calls] == ["get_load_balancer"] * 3
    assert cloud.retries == 2
    assert len(inner.clock.sleeps) == 2
    assert 0 <= inner.clock.sleeps[0] <= 0.5 and 0 <= inner.clock.sleeps[1] <= 1.0


@pytest.mark.parametrize(
    "error",
    [
        CloudTimeout("no answer in time"),
        CloudError("bad gateway", status_code=502),
        CloudError("internal", status_code=500),
        CloudError("slow down", status_code=429),
    ],
    ids=["timeout", "502", "500", "429"],
)
def test_transient_errors_are_retried(error: CloudError) -> None:
    inner = ScriptedCloud(list_load_balancers=[error, ["lb"]])
    cloud = _wrap(inner)
    assert cloud.list_load_balancers(project_id="p") == ["lb"]
    assert len(inner.calls) == 2 and cloud.retries == 1


@pytest.mark.parametrize(
    "error",
    [
        NotFound("no such load balancer", status_code=404),
        Conflict("immutable", status_code=409),
        PreconditionFailed("revision moved", status_code=412),
        QuotaExceeded("over quota", status_code=403),
        CloudError("Validation failure", status_code=400),
        CloudError("connection refused"),  # no status: nothing says that it is transient
    ],
    ids=["404", "409", "412", "403", "400", "no-status"],
)
def test_errors_about_the_request_itself_are_raised_at_once(error: CloudError) -> None:
    inner = ScriptedCloud(get_load_balancer=[error, "lb"])
    cloud = _wrap(inner)
    with pytest.raises(CloudError) as raised:
        cloud.get_load_balancer("lb-1")
    assert raised.value is error
    assert len(inner.calls) == 1 and cloud.retries == 0 and inner.clock.sleeps == []


SIDE_EFFECTS: dict[str, Callable[[Any], Any]] = {
    "create_load_balancer": lambda c: c.create_load_balancer({"name": "x"}),
    "delete_load_balancer": lambda c: c.delete_load_balancer("lb-1"),
    "move_floating_ip": lambda c: c.move_floating_ip("f", port_id="p", fixed_ip_address=None, if_revision=1),
    "rename_load_balancer": lambda c: c.rename_load_balancer("lb-1", "n"),
    "failover_load_balancer": lambda c: c.failover_load_balancer("lb-1"),
    "create_floating_ip": lambda c: c.create_floating_ip(floating_network_id="n", port_id="p", tags=[]),
}


@pytest.mark.parametrize("name", sorted(SIDE_EFFECTS))
@pytest.mark.parametrize("error", [_503(), CloudTimeout("no answer in time")], ids=["503", "timeout"])
def test_a_failed_side_effect_is_raised_at_once_and_called_exactly_once(name: str, error: CloudError) -> None:
    inner = ScriptedCloud(**{name: [error, "done"]})
    cloud = _wrap(inner)
    with pytest.raises(CloudError) as raised:
        SIDE_EFFECTS[name](cloud)
    assert raised.value is error
    assert inner.calls == [(name, 1000.0)]
    assert cloud.retries == 0 and inner.clock.sleeps == []
    assert not is_read(name)


def test_the_budget_bounds_the_retries_and_the_last_error_is_raised_unchanged() -> None:
    errors = [_503(n) for n in range(1000)]
    inner = ScriptedCloud(get_load_balancer=errors)
    cloud = _wrap(inner, budget=10.0)
    with pytest.raises(CloudError) as raised:
        cloud.get_load_balancer("lb-1")
    attempts = len(inner.calls)
    assert raised.value is errors[attempts - 1], "not the last error"
    assert str(raised.value) == f"service unavailable #{attempts - 1} (HTTP 503, request req-{attempts - 1})"
    assert attempts > 3 and cloud.retries == attempts - 1
    assert all(start <= 1000.0 + 10.0 for _name, start in inner.calls), "a retry started after the budget"
    assert inner.clock.t - 1000.0 == pytest.approx(10.0), "the last wait is cut at the end of the budget"


def test_slow_failures_count_against_the_budget() -> None:
    def slow_timeout(clock: ManualClock) -> CloudTimeout:
        clock.t += 25.0  # each request waits for its API timeout before failing
        return CloudTimeout("no answer in time")

    inner = ScriptedCloud(get_load_balancer=[slow_timeout])
    cloud = _wrap(inner, budget=60.0)
    with pytest.raises(CloudTimeout):
        cloud.get_load_balancer("lb-1")
    starts = [start - 1000.0 for _name, start in inner.calls]
    assert len(starts) == 3, starts  # at 0, after 25 s + a wait, after 50 s + two waits; then 75 s > 60 s
    assert all(start <= 60.0 for start in starts)


def test_backoff_doubles_up_to_the_maximum() -> None:
    class Highest(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    inner = ScriptedCloud(get_load_balancer=[_503()])
    cloud = RetryingCloud(inner, policy=RetryPolicy(budget=40.0), rng=Highest())
    with pytest.raises(CloudError):
        cloud.get_load_balancer("lb-1")
    assert inner.clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 0.5]


def test_jitter_is_full_and_seeded() -> None:
    def sleeps(seed: int) -> list[float]:
        inner = ScriptedCloud(get_load_balancer=[_503()])
        with pytest.raises(CloudError):
            _wrap(inner, seed=seed, budget=300.0).get_load_balancer("lb-1")
        return inner.clock.sleeps

    first, again, other = sleeps(7), sleeps(7), sleeps(8)
    assert first == again
    assert first != other
    policy = RetryPolicy()
    assert all(0 <= s <= policy.cap(n) for n, s in enumerate(first[:-1], start=1))
    # full jitter: waits spread over [0, cap], not bunched at the cap
    late = [s / policy.max_delay for s in first[8:-1]]
    assert min(late) < 0.3 and max(late) > 0.7, late


def test_any_read_by_name_is_retried_and_nothing_else() -> None:
    inner = ScriptedCloud(list_widgets=[_503(), "w"], snapshot_state=[_503(), "s"], publish_image=[_503(), "i"])
    cloud = _wrap(inner)
    assert cloud.list_widgets() == "w"
    with pytest.raises(CloudError):
        cloud.snapshot_state()
    with pytest.raises(CloudError):
        cloud.publish_image("new")
    assert cloud.retries == 1
    assert [c[0] for c in inner.calls] == ["list_widgets", "list_widgets", "snapshot_state", "publish_image"]


def test_everything_else_is_the_backend_s_own() -> None:
    inner = ScriptedCloud()
    cloud = _wrap(inner)
    assert cloud.kind == "scripted"
    assert cloud.spec() == "scripted:"
    assert cloud.clock is inner.clock
    assert cloud.extra == "backend-specific"
    assert cloud.publish_image == inner.publish_image
    assert cloud.wrapped is inner and unwrap(cloud) is inner and unwrap(inner) is inner
    with pytest.raises(AttributeError):
        cloud.no_such_method  # noqa: B018


def test_each_retry_is_logged_with_the_method_and_the_error_not_the_arguments(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = ScriptedCloud(can_read_secret=[CloudError("gateway\ntraceback...", status_code=504), True])
    with caplog.at_level(logging.DEBUG, logger="lbswap.clouds.retry"):
        assert _wrap(inner).can_read_secret("https://barbican/secrets/TOP-SECRET") is True
    (record,) = caplog.records
    assert record.levelno == logging.DEBUG
    assert "can_read_secret" in record.getMessage() and "gateway" in record.getMessage()
    assert "traceback" not in record.getMessage(), "more than the error's first line"
    assert "TOP-SECRET" not in caplog.text


def test_open_cloud_retries_the_fake_s_simulated_500_on_its_simulated_clock(tmp_path: Path) -> None:
    path = tmp_path / "cloud.json"
    ids = fake.seed_sample(path, 3)
    cloud = open_cloud(f"fake:{path}")
    assert isinstance(cloud, Cloud) and isinstance(unwrap(cloud), fake.FakeCloud)
    assert cloud.kind == "fake" and cloud.spec() == f"fake:{path}"
    before = cloud.clock.now()
    fake.set_faults(path, fail_at=1, fail_kind="error")  # the next call answers 500
    assert [lb.id for lb in cloud.list_load_balancers()] == ids
    assert isinstance(cloud, RetryingCloud) and cloud.retries == 1
    assert 0 <= cloud.clock.now() - before <= RetryPolicy().first_delay
    unwrap(cloud).publish_image("amphora-new")  # backend-specific methods still reachable
    cloud.close()


def test_the_environment_sets_the_budget_and_0_turns_retries_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert policy_from_env({}) == RetryPolicy() and policy_from_env({BUDGET_ENV: " 5 "}).budget == 5.0
    path = tmp_path / "cloud.json"
    fake.seed_sample(path, 1)
    monkeypatch.setenv(BUDGET_ENV, "0")
    cloud = open_cloud(f"fake:{path}")
    fake.set_faults(path, fail_at=1, fail_kind="error")
    with pytest.raises(CloudError, match="simulated API error"):
        cloud.list_load_balancers()
    assert isinstance(cloud, RetryingCloud) and cloud.retries == 0


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_a_budget_that_is_not_a_number_of_seconds_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    path = tmp_path / "cloud.json"
    fake.seed_sample(path, 1)
    monkeypatch.setenv(BUDGET_ENV, value)
    with pytest.raises(ConfigError, match=BUDGET_ENV):
        open_cloud(f"fake:{path}")
