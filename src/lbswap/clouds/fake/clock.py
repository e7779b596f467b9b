"""The simulated clock: its time lives in the state file, so every process sharing the cloud sees one time.

``sleep(s)`` advances it at once; nothing ever sleeps for real.
"""

from __future__ import annotations

from collections.abc import Callable


class FakeClock:
    """A Clock (clouds/base.py) over the simulator's stored time."""

    def __init__(self, read: Callable[[], float], advance: Callable[[float], None]) -> None:
        self._read = read
        self._advance = advance

    def now(self) -> float:
        return self._read()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._advance(seconds)
