"""The gap allowed between two chunks of a stream, kept with one timer per stream.

`asyncio.timeout` around every wait for the next chunk schedules and cancels a timer per token;
with the context manager that maps the errors around it, that was 10 to 15 % of the gateway's
CPU for a 128-token answer. `IdleWatch` keeps one timer: each wait notes when it began (and which
task waits), and the timer, when it fires, either finds the current wait older than the limit
and cancels that task, or is set again for the current wait's own deadline. A wait that times out
raises TimeoutError, as `asyncio.timeout` does; a cancellation from elsewhere stays one.

Only the wait itself is timed: while the consumer handles a chunk (writes it to a slow client,
say), no wait is open and nothing can expire. Waits may come from different tasks (the gateway
reads the first chunk in the request's task and the rest in the connection's).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


class IdleWatch:
    """`await watch.next(items)`: the next item within `seconds`, or TimeoutError."""

    __slots__ = ("_armed_for", "_cancelling", "_expired", "_handle", "_loop", "_started", "_task",
                 "_wait", "seconds")  # fmt: skip

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None  # the task waiting now, if one is
        self._wait = 0  # the number of the current (or last) wait
        self._started = 0.0  # when it began
        self._armed_for = 0  # the wait the timer was set for
        self._cancelling = 0
        self._expired = False

    async def next(self, items: AsyncIterator[T]) -> T | None:
        """The next item, None at the end; TimeoutError when none came within `seconds`."""
        task = asyncio.current_task()
        assert task is not None, "IdleWatch.next runs in a task"
        self._task, self._cancelling = task, task.cancelling()
        self._wait += 1
        self._started = self._loop.time()
        if self._handle is None:
            self._arm(self._started)
        try:
            return await anext(items, None)
        except asyncio.CancelledError:
            if self._expired and task.uncancel() <= self._cancelling:
                raise TimeoutError(f"no item within {self.seconds:g} s") from None
            raise
        finally:
            self._task, self._expired = None, False

    def close(self) -> None:
        """Stop the timer (the stream ended or was closed)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._task = None

    def _arm(self, start: float) -> None:
        self._armed_for = self._wait
        self._handle = self._loop.call_at(start + self.seconds, self._fire)

    def _fire(self) -> None:
        self._handle = None
        task = self._task
        if task is None:  # between waits: the next wait sets the timer again
            return
        if self._wait != self._armed_for:  # a later wait: its own deadline
            self._arm(self._started)
            return
        self._expired = True
        task.cancel()
