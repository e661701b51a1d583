"""A circuit breaker per local model: after N failures in a row, stop calling it for a while.

closed -> (N consecutive failures) -> open -> (reset_s later) -> half-open: one trial call goes
through; its success closes the circuit, its failure opens it again for another reset_s.
While open, callers fail at once instead of waiting for timeouts, so a reroute moves on to the
next local model (or refuses) without delay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures_to_open = failures
        self.reset_s = reset_s
        self.clock = clock
        self.failures = 0  # consecutive
        self.last_error = ""
        self._opened_at: float | None = None
        self._trial = False  # the half-open trial call is under way

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self._opened_at >= self.reset_s else "open"

    def retry_in(self) -> float:
        """Seconds until the circuit half-opens (0 when it is not open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.reset_s - (self.clock() - self._opened_at))

    def allow(self) -> bool:
        """May a call go out now? In half-open, only the one trial may."""
        state = self.state
        if state == "closed":
            return True
        if state == "open" or self._trial:
            return False
        self._trial = True
        return True

    def success(self) -> None:
        self.failures = 0
        self._opened_at = None
        self._trial = False

    def failure(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        if self._trial or self.failures >= self.failures_to_open:
            self._opened_at = self.clock()
        self._trial = False

    def release(self) -> None:
        """A call ended with neither verdict (the caller gave up): let another trial through."""
        self._trial = False

    def describe(self) -> str:
        state = self.state
        if state == "closed":
            return "closed" if not self.failures else f"closed ({self.failures} failed in a row)"
        if state == "open":
            return f"open for {self.retry_in():.0f} s more after: {self.last_error}"
        return "half-open (next call is a trial)"
